"""Fixtures: isolated cache, a runs folder of its own for every test, tiny trained runs on `sample`.

Helpers (tiny configs, train_tiny, tiny model shapes) live in tests/helpers.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# re-exported: tests written before tests/helpers.py import these from here
from tests.helpers import (  # noqa: F401
    MIRROR,
    ROOT,
    TINY,
    needs_mirror,
    runs_in,
    tiny_config,
    tiny_sets,
    tiny_train_args,
    train_tiny,
)

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _isolated(tmp_path_factory):
    """Every test session gets its own cache and run folders; the mirror stands in for the network."""
    base = tmp_path_factory.mktemp("mt")
    os.environ["MT_CACHE"] = str(base / "cache")  # shared: encoded data, keyed by its settings
    os.environ["MT_RUNS_DIR"] = str(base / "runs")  # only fixtures wider than a test that forget `runs_in`
    os.environ["MT_TEST_SHARED"] = str(base / "shared")  # helpers.shared_runs
    if MIRROR.is_dir():
        os.environ.setdefault("MT_CORPUS_MIRROR", str(MIRROR))
    yield


@pytest.fixture(autouse=True)
def own_runs(tmp_path, monkeypatch) -> Path:
    """Every test trains, finds and lists runs in a folder of its own: none sees another's run or "the latest"."""
    monkeypatch.setenv("MT_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="session", params=["transformer", "seq2seq"])
def tiny_run(request, tmp_path_factory) -> Path:
    """A tiny trained run of each model family, in a folder of its own (shared by translate/evaluate/compress tests)."""
    with runs_in(tmp_path_factory.mktemp(f"tiny-{request.param}")):
        return train_tiny(request.param, f"tiny-{request.param}", epochs=8)
