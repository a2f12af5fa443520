"""TensorBoard event files beside metrics.jsonl (mt/tracking.py)."""

from __future__ import annotations

import builtins

import pytest

from mt import experiments
from tests.helpers import train_tiny


@pytest.mark.slow  # a training that writes TensorBoard events
def test_event_files_hold_per_update_and_per_epoch_scalars():
    pytest.importorskip("tensorboard", reason="TensorBoard is an optional extra: pip install 'mt-enja[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train_tiny("transformer", "tb", epochs=2)
    events = list(run.glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s",
            "dev/loss", "dev/ppl", "dev/bleu", "dev/chrf", "dev/best_bleu"} <= tags
    records = [r for r in experiments.read_metrics(run) if "epoch" in r]
    assert [e.value for e in acc.Scalars("dev/bleu")] == pytest.approx([r["dev_bleu"] for r in records])
    assert len(acc.Scalars("train/loss")) == records[-1]["step"]
    assert {"config", "bleu_signature"} <= {t.split("/")[0] for t in acc.Tags()["tensors"]}


def test_without_tensorboard_training_goes_on_with_one_note(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    run = train_tiny("transformer", "no-tb", epochs=1)
    out = capsys.readouterr().out
    assert out.count("TensorBoard not installed") == 1 and "mt-enja[tensorboard]" in out
    assert not list(run.glob("events.out.tfevents.*")) and (run / "metrics.jsonl").exists()
