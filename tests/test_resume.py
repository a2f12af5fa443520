"""`mt train --resume`: only operational settings may change; each change is recorded with its epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from mt import checkpoint, compare, experiments, resumes
from mt.cli import main
from tests.helpers import train_tiny


@pytest.fixture
def run(tmp_path, monkeypatch) -> Path:
    """A tiny transformer trained for 1 epoch, in this test's own runs folder."""
    monkeypatch.setenv("MT_RUNS_DIR", str(tmp_path / "runs"))
    return train_tiny("transformer", "resumed", epochs=1)


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def _epochs(run: Path) -> list[int]:
    return [r["epoch"] for r in experiments.read_metrics(run) if "epoch" in r]


REFUSED = [  # (arguments after --resume RUN, words the one line must hold)
    (["--set", "model.d_model=128"], ["model.d_model", "32 → 128", "train.epochs"]),
    (["--set", "model.type=\"seq2seq\""], ["model.type"]),
    (["--set", "train.lr=0.5"], ["train.lr", "0.003 → 0.5"]),
    (["--set", "decode.alpha=1.0"], ["decode.alpha", "--alpha"]),
    (["--seed", "7"], ["--seed 7", "train.seed", "random state"]),
    (["--corpus", "small_parallel_enja"], ["--corpus small_parallel_enja", "data.corpus"]),
    (["--limit", "10"], ["--limit 10", "data.limit"]),
    (["--epochs", "3", "--set", "train.warmup_steps=5"], ["train.warmup_steps"]),  # one refused key refuses all
    (["--name", "other"], ["--name", "does not apply"]),
    (["--config", "tests/tiny.toml"], ["--config", "does not apply"]),
]


def test_resume_refuses_changes_to_the_model_the_data_and_learning(run, capsys):
    before = _files(run)
    for args, words in REFUSED:
        assert main(["train", "--resume", str(run), *args]) == 2, args
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("mt: error:") and err.count("\n") == 1, (args, err)
        assert "Traceback" not in err and all(w in err for w in words), (args, err)
    assert _files(run) == before  # not a byte changed, no change recorded, no lock left behind


def test_resume_records_operational_changes_with_their_epoch(run, capsys):
    config_toml = (run / "config.toml").read_bytes()
    step = checkpoint.load(run / "last.safetensors")[1]["trainer"]["step"]
    assert main(["train", "--resume", str(run), "--epochs", "2", "--set", "train.threads=1",
                 "--seed", "42"]) == 0  # --seed equal to the run's own is no change
    out = capsys.readouterr().out
    assert "train.epochs: 1 → 2 from epoch 2" in out and "train.threads: 0 → 1 from epoch 2" in out
    assert (run / "config.toml").read_bytes() == config_toml  # the record of how the first epoch was trained
    assert resumes.read_changes(run) == [
        {"epoch": 2, "step": step, "key": "train.epochs", "old": 1, "new": 2},
        {"epoch": 2, "step": step, "key": "train.threads", "old": 0, "new": 1}]
    assert _epochs(run) == [1, 2]
    # a resume without flags keeps the changed settings: done at 2 epochs, nothing new recorded
    assert main(["train", "--resume", str(run)]) == 0
    assert _epochs(run) == [1, 2] and len(resumes.read_changes(run)) == 2
    step = checkpoint.load(run / "last.safetensors")[1]["trainer"]["step"]
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert resumes.read_changes(run)[-1] == {"epoch": 3, "step": step, "key": "train.epochs", "old": 2, "new": 3}
    assert _epochs(run) == [1, 2, 3] and (run / "config.toml").read_bytes() == config_toml
    assert resumes.recorded_raw(run)["train"]["epochs"] == 3


def test_seed_groups_see_a_run_as_it_was_trained(tmp_path, monkeypatch):
    """A run extended from 1 to 2 epochs on resume groups with a run of the same config trained 2 straight."""
    monkeypatch.setenv("MT_RUNS_DIR", str(tmp_path / "runs"))
    straight = train_tiny("transformer", "straight", epochs=2, extra=["train.seed=7"])
    extended = train_tiny("transformer", "extended", epochs=1)
    assert main(["train", "--resume", str(extended), "--epochs", "2"]) == 0
    assert compare.seed_groups([straight, extended]) == [[straight, extended]]
