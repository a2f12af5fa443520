"""Shared fixtures: isolated cache/run folders, tiny configs, tiny trained runs on `sample`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mt import config
from mt.cli import main

ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("MT_CORPUS_MIRROR") or ROOT.parent / "shared" / "corpora")  # a local corpus mirror
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no corpus mirror at {MIRROR} (set MT_CORPUS_MIRROR)")

torch.set_num_threads(1)

TINY = {
    "transformer": {"type": "transformer", "d_model": 32, "n_heads": 2, "d_ff": 64,
                    "n_encoder_layers": 2, "n_decoder_layers": 2, "dropout": 0.0},
    "seq2seq": {"type": "seq2seq", "cell": "gru", "emb_size": 32, "hidden_size": 32, "n_layers": 1,
                "bidirectional": True, "attention": "luong", "dropout": 0.0, "tie_output": True},
}


def tiny_config(kind: str, **model) -> config.Config:
    raw = {"model": {**TINY[kind], **model}, "data": {"corpus": "sample", "min_count": 1},
           "train": {"epochs": 2, "batch_tokens": 512, "lr": 3e-3, "warmup_steps": 0,
                     "schedule": "constant", "average_last": 0, "keep_epochs": 3},
           "decode": {"beam": 3, "batch_size": 16}}
    return config.build(raw)


@pytest.fixture(autouse=True, scope="session")
def _isolated(tmp_path_factory):
    """Every test session gets its own cache and run folders; the mirror stands in for the network."""
    base = tmp_path_factory.mktemp("mt")
    os.environ["MT_CACHE"] = str(base / "cache")
    os.environ["MT_RUNS_DIR"] = str(base / "runs")
    if MIRROR.is_dir():
        os.environ.setdefault("MT_CORPUS_MIRROR", str(MIRROR))
    yield


def tiny_sets(kind: str) -> list[str]:
    return [f"model.{k}={v!r}".replace("'", '"') if isinstance(v, str) else
            f"model.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in TINY[kind].items()
            if k != "type"]


def tiny_train_args(kind: str, name: str, epochs: int, extra: list[str] = (), device: str = "cpu") -> list[str]:
    """`mt train` arguments for a tiny model on the sample corpus (extra: more --set overrides)."""
    args = ["train", "--model", kind, "--corpus", "sample", "--name", name, "--epochs", str(epochs),
            "--config", str(ROOT / "tests" / "tiny.toml"), "--device", device]
    for s in [*tiny_sets(kind), *extra]:
        args += ["--set", s]
    return args


def train_tiny(kind: str, name: str, epochs: int = 8, extra: list[str] = (), device: str = "cpu") -> Path:
    """Train a tiny model on the sample corpus through the CLI; returns the run folder."""
    assert main(tiny_train_args(kind, name, epochs, extra, device)) == 0
    return Path(os.environ["MT_RUNS_DIR"]) / name


@pytest.fixture(scope="session", params=["transformer", "seq2seq"])
def tiny_run(request) -> Path:
    """A tiny trained run of each model family (shared by translate/evaluate/compress tests)."""
    return train_tiny(request.param, f"tiny-{request.param}", epochs=8)
