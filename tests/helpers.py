"""What several test modules use: tiny configs and runs on `sample`, tiny model shapes, assertions.

Test modules import from here, never from each other; fixtures live in conftest.py.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mt import config
from mt.cli import main
from mt.rnn import RNNConfig
from mt.transformer import TransformerConfig
from mt.vocab import BOS, PAD

ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("MT_CORPUS_MIRROR") or ROOT.parent / "shared" / "corpora")  # a local corpus mirror
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no corpus mirror at {MIRROR} (set MT_CORPUS_MIRROR)")

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


def runs_dir() -> Path:
    """This test's own runs folder (conftest gives each test one; a wider fixture, see `runs_in`)."""
    return Path(os.environ["MT_RUNS_DIR"])


@contextmanager
def runs_in(folder: Path) -> Iterator[Path]:
    """MT_RUNS_DIR = `folder` for the block: a fixture shared by several tests trains into its own folder."""
    old = os.environ["MT_RUNS_DIR"]
    os.environ["MT_RUNS_DIR"] = str(folder)
    try:
        yield folder
    finally:
        os.environ["MT_RUNS_DIR"] = old


def shared_runs(name: str) -> Path:
    """A runs folder of the session's own for runs that a module trains once and several of its tests read."""
    return Path(os.environ["MT_TEST_SHARED"]) / name


def train_tiny(kind: str, name: str, epochs: int = 8, extra: list[str] = (), device: str = "cpu") -> Path:
    """Train a tiny model on the sample corpus through the CLI; returns the run folder."""
    assert main(tiny_train_args(kind, name, epochs, extra, device)) == 0
    return runs_dir() / name


def cli_translate(lines: list[str], monkeypatch, capsys, *args: str) -> list[str]:
    """`mt translate ARGS` with `lines` on stdin: its stdout lines."""
    class Stdin:
        buffer = io.BytesIO("".join(x + "\n" for x in lines).encode())

    monkeypatch.setattr("sys.stdin", Stdin())
    capsys.readouterr()
    assert main(["translate", *args]) == 0
    return capsys.readouterr().out.splitlines()


def weights(path: Path) -> dict:
    """A checkpoint's model tensors."""
    return {k: v for k, v in load_file(path).items() if k.startswith("model.")}


def one_line_error(err: str, *words: str) -> None:
    """`err` is one `mt: error:` line holding `words`, no traceback."""
    assert err.startswith("mt: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# -- tiny models for the contract tests ---------------------------------------------------

V_SRC, V_TGT = 23, 29

CONFIGS = {
    "transformer-pre": ("transformer", TransformerConfig(d_model=32, n_heads=4, d_ff=64, n_encoder_layers=2,
                                                         n_decoder_layers=2, dropout=0.0)),
    "transformer-post": ("transformer", TransformerConfig(d_model=32, n_heads=4, d_ff=64, n_encoder_layers=2,
                                                          n_decoder_layers=2, dropout=0.0, norm="post",
                                                          tie_output=False)),
    "rnn-luong": ("seq2seq", RNNConfig(cell="lstm", emb_size=32, hidden_size=32, n_layers=2, dropout=0.0,
                                       tie_output=True)),  # the default's shape: tied, 2 layers
    "rnn-bahdanau": ("seq2seq", RNNConfig(cell="gru", emb_size=16, hidden_size=32, n_layers=1,
                                          attention="bahdanau", dropout=0.0)),
    "rnn-none": ("seq2seq", RNNConfig(cell="gru", emb_size=16, hidden_size=32, n_layers=1,
                                      bidirectional=False, attention="none", dropout=0.0)),
}


def batch(B=3, S=7, T=6, seed=1):
    """Random (src, src_len, tgt_in) for the tiny vocabularies: lengths S, S-2, S-4, padded; BOS first."""
    g = torch.Generator().manual_seed(seed)
    src_len = torch.tensor([S, S - 2, S - 4][:B])
    src = torch.randint(4, V_SRC, (B, S), generator=g)
    src[torch.arange(S)[None] >= src_len[:, None]] = PAD
    tgt_in = torch.randint(4, V_TGT, (B, T), generator=g)
    tgt_in[:, 0] = BOS
    return src, src_len, tgt_in
