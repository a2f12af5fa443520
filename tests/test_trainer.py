"""Trainer: end-to-end runs, metrics, exact resume, kill safety, NaN stop, DDP, compare."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mt import experiments
from mt.cli import main
from tests.helpers import ROOT, tiny_config, tiny_train_args, train_tiny, weights

EPOCH_LINE = re.compile(r"^epoch +(\d+) +step +(\d+) +train loss ([\d.]+) +dev loss ([\d.]+) +dev BLEU +([\d.]+) +"
                        r"chrF +([\d.]+) .* tgt tok/s( +\*)?$")


def test_train_prints_one_line_per_epoch_that_agrees_with_the_record(capsys):
    run = train_tiny("transformer", "printed", epochs=3)
    out = capsys.readouterr().out.splitlines()
    printed = [m.groups() for line in out if (m := EPOCH_LINE.match(line))]
    records = [r for r in experiments.read_metrics(run) if "epoch" in r]
    assert [(int(e), int(s)) for e, s, *_ in printed] == [(r["epoch"], r["step"]) for r in records] and len(records) == 3
    for (_, _, loss, dev_loss, bleu, chrf, star), r in zip(printed, records):
        assert (loss, dev_loss) == (f"{r['train_loss']:.3f}", f"{r['dev_loss']:.3f}")
        assert (bleu, chrf) == (f"{r['dev_bleu']:.2f}", f"{r['dev_chrf']:.2f}")
        best_before = max([x["dev_bleu"] for x in records if x["epoch"] < r["epoch"]], default=-1.0)
        assert (star is not None) == (r["dev_bleu"] > best_before), (r, star)  # * marks a new best
    best = max(records, key=lambda r: (r["dev_bleu"], -r["epoch"]))
    assert out[-1] == (f"done (epochs): best dev BLEU {best['dev_bleu']:.2f} at epoch {best['epoch']}; "
                       f"run folder {run}")


def test_train_records_metrics_and_run_files(tiny_run):
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "epoch" in r]
    assert [r["epoch"] for r in epochs] == list(range(1, 9))
    for key in ("step", "train_loss", "dev_loss", "dev_bleu", "dev_chrf", "lr", "seconds", "tgt_tokens_per_s"):
        assert key in epochs[0]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert max(r["dev_bleu"] for r in epochs) > epochs[0]["dev_bleu"]
    for name in ("config.toml", "vocab.json", "best.safetensors", "last.safetensors", "info.json"):
        assert (tiny_run / name).exists(), name


@pytest.mark.slow  # four tiny trainings with dropout
def test_resume_is_exact(tmp_path):
    """2 epochs straight == 1 epoch, resume, 1 more epoch (identical weights on CPU)."""
    straight = train_tiny("transformer", "straight", epochs=2, extra=["model.dropout=0.2"])
    half = train_tiny("transformer", "half", epochs=1, extra=["model.dropout=0.2"])
    assert main(["train", "--resume", str(half), "--epochs", "2"]) == 0
    a, b = weights(straight / "last.safetensors"), weights(half / "last.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)


def _train_cmd(name: str, epochs: int, extra: list[str] = ()) -> list[str]:
    return [sys.executable, "-m", "mt", *tiny_train_args("transformer", name, epochs, extra)]


@pytest.mark.slow  # a training subprocess, killed mid-epoch, then resumed
def test_sigkill_mid_epoch_leaves_checkpoint_resumable():
    name = "killed"
    run = Path(os.environ["MT_RUNS_DIR"]) / name
    proc = subprocess.Popen(_train_cmd(name, 200, ["train.save_every_steps=3"]), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "epoch-2.safetensors").exists():
        time.sleep(0.2)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / "last.safetensors").exists()
    # a kill during a checkpoint write leaves its temporary file (never the checkpoint half-written);
    # the resume removes it
    for name in ("last.safetensorsx1y2z3.tmp", "epoch-9.safetensorsq7w8e9.tmp"):
        (run / name).write_bytes(b"partial")
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 0
    assert not list(run.glob("*.tmp"))
    epochs = [json.loads(x).get("epoch") for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert 4 in epochs


@pytest.mark.slow  # a training subprocess, interrupted
def test_sigint_saves_and_stops_cleanly():
    name = "interrupted"
    run = Path(os.environ["MT_RUNS_DIR"]) / name
    proc = subprocess.Popen(_train_cmd(name, 200), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "epoch-1.safetensors").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "interrupted" in out and "Traceback" not in out
    assert (run / "last.safetensors").exists()


def test_nan_loss_stops_with_message(capsys):
    code = main(tiny_train_args("transformer", "nan", 3, ["train.lr=1e30", "train.clip_grad=0"]))
    err = capsys.readouterr().err
    assert code != 0
    assert "loss is" in err and "last good checkpoint" in err
    assert "Traceback" not in err


def test_bad_config_is_one_line_error(capsys):
    assert main(["train", "--model", "transformer", "--set", "train.lrr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lrr" in err and "valid keys" in err
    assert main(["train", "--model", "transformer", "--set", "train.epochs=\"ten\""]) == 2
    assert "train.epochs" in capsys.readouterr().err


def test_compare_and_plot(tiny_run, tmp_path, capsys):
    plot = tmp_path / "curves.png"
    assert main(["compare", str(tiny_run), "--plot", str(plot)]) == 0  # all runs: the distilled ones have another corpus
    out = capsys.readouterr().out
    assert tiny_run.name in out and "dev BLEU" in out
    assert plot.stat().st_size > 1000


@pytest.mark.slow  # two torchrun processes
@pytest.mark.skipif(sys.platform != "linux", reason="torchrun/gloo test on linux")
def test_ddp_two_processes_end_in_sync():
    name = "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "mt", *_train_cmd(name, 2)[3:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ranks in sync: True" in proc.stdout
    assert "2 processes" in proc.stdout


def _one_step(micro_batches: int, kind: str) -> tuple[torch.Tensor, dict]:
    """One train_step of a fresh tiny model on a real `sample` batch; (loss, gradients it applied)."""
    from dataclasses import replace

    from mt import corpora, data
    from mt.model import build_model
    from mt.optim import make_optimizer
    from mt.step import train_step

    cfg = tiny_config(kind)
    cfg = replace(cfg, data=replace(cfg.data, tgt_tokenizer="janome"),
                  train=replace(cfg.train, micro_batches=micro_batches))
    folder, _ = corpora.resolve("sample")
    prep = data.prepare(cfg.data, folder, lambda _m: None)
    train = prep.split("train")
    idx = train.tgt_lens.argsort()[::25][:12]  # lengths short to long: each micro-batch is cut narrower
    torch.manual_seed(0)
    model = build_model(kind, cfg.model, len(prep.src_vocab), len(prep.tgt_vocab))
    opt = make_optimizer(model, cfg.train)
    loss = train_step(model, opt, data.collate(train, idx), cfg, 1, 1, torch.device("cpu")).loss
    return loss, {k: p.grad for k, p in model.named_parameters()}


@pytest.mark.parametrize("kind", ["transformer", "seq2seq"])
def test_micro_batches_give_the_same_update(kind):
    loss1, g1 = _one_step(1, kind)
    loss3, g3 = _one_step(3, kind)
    assert torch.allclose(loss1, loss3, rtol=1e-5)
    for k in g1:  # the clipped gradient Adam applied: the same whether the batch went whole or in 3 chunks
        assert torch.allclose(g1[k], g3[k], rtol=1e-4, atol=1e-7), k


def test_batch_split_keeps_every_token():
    from mt import data

    src, src_len = data.pad_sources([[5, 6, 7], [5], [8, 9], [4, 4, 4, 4]])
    tgt_out = torch.tensor([[5, 3, 0, 0], [6, 7, 3, 0], [9, 3, 0, 0], [5, 3, 0, 0]])
    batch = data.Batch(src, src_len, tgt_out.roll(1, 1), tgt_out, 9)
    parts = batch.split(2)
    assert [len(p.src_len) for p in parts] == [2, 2]
    assert sum(p.n_tokens for p in parts) == batch.n_tokens
    assert parts[1].src.shape[1] == 5 and parts[1].tgt_out.shape[1] == 2  # cut to the chunk's own lengths
    assert all(t.is_contiguous() for p in parts for t in (p.src, p.tgt_in, p.tgt_out))  # the loss views them


def test_cosine_schedule():
    from mt.config import TrainConfig
    from mt.optim import learning_rate

    cfg = TrainConfig(lr=1e-3, schedule="cosine", warmup_steps=10, decay_steps=110)
    lrs = [learning_rate(s, cfg) for s in range(1, 121)]
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 9  # peak at the end of warmup
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # then never rises
    assert lrs[59] == pytest.approx(5e-4) and lrs[109] == pytest.approx(0.0) and lrs[-1] == 0.0


def test_plateau_schedule_decays_after_each_epoch_without_gain():
    """An epoch trains at lr0 × factor^(earlier epochs without a dev BLEU gain, patience 1); a tiny lr keeps
    BLEU flat, so the decays happen."""
    run = train_tiny("transformer", "plateau", epochs=4, extra=['train.schedule="plateau"', "train.lr=1e-9",
                                                               "train.decay_factor=0.25"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best, decays, seen = -1.0, 0, 0
    for r in (r for r in records if "epoch" in r):
        assert r["lr"] == pytest.approx(1e-9 * 0.25 ** decays)
        if r["dev_bleu"] > best:
            best = r["dev_bleu"]
        else:
            decays += 1
        seen += 1
    assert seen == 4 and decays >= 1  # the decay was exercised


def test_plateau_needs_valid_factor_and_patience():
    from mt.config import TrainConfig
    from mt.errors import MTError
    from mt.optim import learning_rate

    assert learning_rate(5, TrainConfig(lr=1e-3, schedule="plateau", warmup_steps=0), decays=2) == pytest.approx(2.5e-4)
    with pytest.raises(MTError, match="decay_patience"):
        learning_rate(5, TrainConfig(schedule="plateau", decay_patience=0))


def test_final_is_the_better_of_best_and_averaged_as_translate_decodes(capsys):
    """Per-epoch dev BLEU is greedy; `final` is chosen with the run's own beam and α, and the dev BLEU
    recorded for it is what `mt evaluate` measures on final.safetensors."""
    run = train_tiny("transformer", "choose-final", epochs=5, extra=["train.average_last=3", "decode.alpha=1.0"])
    summary = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["summary"]
    assert summary["final_chosen_by"] == "beam 3, α 1.0"
    found, chosen = summary["final_dev_bleu"], summary["final"]
    other = "best" if chosen == "averaged" else "averaged"
    assert found[chosen] >= found[other]
    assert (run / "final.safetensors").read_bytes() == (run / f"{chosen}.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run / "final.safetensors"), "--split", "dev"]) == 0
    out = capsys.readouterr().out
    # `sample` is raw text: its dev BLEU is ja-mecab on detokenized text
    scored = {x[:x.index(")") + 1]: float(x.split()[2]) for x in out.splitlines() if x.startswith("BLEU (")}
    assert scored["BLEU (ja-mecab)"] == pytest.approx(found[chosen], abs=0.01)


@pytest.mark.parametrize("kind, bad, field", [
    ("seq2seq", "model.cell=\"rnn\"", "model.cell"),
    ("seq2seq", "model.attention=\"dot\"", "model.attention"),
    ("seq2seq", "model.hidden_size=48", "model.tie_output"),  # tied, but the embeddings are 32 wide
    ("transformer", "model.n_heads=3", "model.n_heads"),
    ("transformer", "model.norm=\"middle\"", "model.norm"),
])
def test_bad_model_settings_are_one_line_errors(capsys, kind, bad, field):
    code = main(tiny_train_args(kind, "bad-model", 1, [bad]))
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("mt: error:") and field in err and err.count("\n") == 1
    assert "Traceback" not in err
