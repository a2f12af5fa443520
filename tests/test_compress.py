"""Compression: int8 quantization, magnitude pruning, sequence-level distillation, the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.ao.nn.quantized import dynamic as nnqd

from mt import checkpoint as ckpt
from mt import codecs, corpora
from mt.cli import main
from mt.experiments import best_checkpoint
from mt.model import count_parameters
from mt.tools import compress
from mt.tools.tradeoff import compression_report, format_markdown
from mt.translate import Translator
from tests.helpers import ROOT, runs_dir

SENTENCES = ["tom likes tea .", "i want a book .", "my mother likes cats ."]


def _fp32_file(run: Path, out: Path) -> Path:
    """The run's best weights alone (no optimizer state): the fair fp32 size to compare against."""
    model, _, meta = ckpt.load_model(best_checkpoint(run))
    ckpt.save_model(out, model.state_dict(), {k: meta[k] for k in ckpt.KEEP_META if k in meta})
    return out


def test_quantize_loads_translates_and_is_smaller(tiny_run, tmp_path, capsys):
    out = tmp_path / "int8.safetensors"
    assert main(["quantize", str(tiny_run), "--out", str(out)]) == 0
    assert "quantized" in capsys.readouterr().out
    with safe_open(out, framework="pt") as f:  # plain tensors only: no pickled packed params
        assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"I8", "F32"}
    translator = Translator.from_checkpoint(out)
    model = translator.model
    kinds = {type(m) for m in model.modules()}
    assert nnqd.Linear in kinds and nn.Linear not in kinds
    if hasattr(model, "encoder"):  # the RNN family
        assert isinstance(model.encoder, (nnqd.GRU, nnqd.LSTM)) and isinstance(model.decoder, (nnqd.GRU, nnqd.LSTM))
    if getattr(model.cfg, "tie_output", False):  # the tie survives: embedding = dequantized output matrix
        assert torch.equal(model.tgt_embed.weight, model.output.weight().dequantize())
    loaded = [o[0].text for o in translator.translate(SENTENCES)]
    assert all(loaded)
    translator.model = compress.quantize_model(ckpt.load_model(best_checkpoint(tiny_run))[0])[0]
    assert [o[0].text for o in translator.translate(SENTENCES)] == loaded  # file == in-memory int8 model
    fp32 = _fp32_file(tiny_run, tmp_path / "fp32.safetensors")
    assert out.stat().st_size < fp32.stat().st_size / 2  # tiny models: the JSON header weighs a lot
    assert ckpt.load(out)[1]["quantized"]["size_ratio"] >= 3  # tensor bytes
    assert main(["quantize", str(out)]) == 2
    assert "already quantized" in capsys.readouterr().err


@pytest.mark.parametrize("amount,scope", [(0.5, "global"), (0.3, "layer")])
def test_prune_reaches_sparsity_loads_and_is_smaller(tiny_run, tmp_path, capsys, amount, scope):
    out = tmp_path / "pruned.safetensors"
    assert main(["prune", str(tiny_run), "--amount", str(amount), "--scope", scope, "--out", str(out)]) == 0
    printed = re.search(r"sparsity ([0-9.]+) of weight matrices", capsys.readouterr().out)
    assert printed and abs(float(printed.group(1)) - amount) < 0.01
    translator = Translator.from_checkpoint(out)
    matrices = compress.prunable(translator.model)
    achieved = sum(int((p == 0).sum()) for p in matrices.values()) / sum(p.numel() for p in matrices.values())
    assert abs(achieved - amount) < 0.01
    if scope == "layer":
        for name, p in matrices.items():
            assert abs(float((p == 0).float().mean()) - amount) <= 1 / p.numel() + 0.02, name
    outputs = translator.translate(SENTENCES)  # a tiny model pruned by half may end a sentence at once
    assert len(outputs) == len(SENTENCES) and any(o[0].text for o in outputs)
    assert out.stat().st_size < _fp32_file(tiny_run, tmp_path / "fp32.safetensors").stat().st_size


def test_prune_finetune_keeps_the_mask(tiny_run):
    plain, meta = compress.prune(best_checkpoint(tiny_run), 0.5)
    tuned, tuned_meta = compress.prune(best_checkpoint(tiny_run), 0.5, finetune_steps=3, log=lambda _m: None)
    plain, tuned = codecs.densify(plain, meta["sparse"]), codecs.densify(tuned, tuned_meta["sparse"])
    assert tuned_meta["pruned"]["sparsity"] >= 0.5 - 0.01
    changed = False
    for key in meta["sparse"]["shapes"]:
        assert torch.all(tuned[key][plain[key] == 0] == 0), key  # pruned stays pruned
        changed |= not torch.equal(plain[key], tuned[key])
    assert changed  # and the rest was trained


def test_prune_errors(tiny_run, capsys):
    assert main(["prune", str(tiny_run), "--amount", "1.5"]) == 2
    assert "--amount 1.5" in capsys.readouterr().err


def test_distill_trains_a_smaller_student(tiny_run, capsys):
    student_sets = ["model.d_model=16", "model.n_heads=2", "model.d_ff=32", "model.n_encoder_layers=1",
                    "model.n_decoder_layers=1", "model.dropout=0.0"]
    name = f"student-{tiny_run.name}"
    args = ["distill", "--teacher", str(tiny_run), "--model", "transformer", "--config",
            str(ROOT / "tests" / "tiny.toml"), "--name", name, "--epochs", "8", "--beam", "2", "--limit", "200"]
    assert main(args + sum((["--set", s] for s in student_sets), [])) == 0
    assert "student best dev BLEU" in capsys.readouterr().out
    student = runs_dir() / name  # this test's own runs folder, not the teacher's
    info = json.loads((student / "distill.json").read_text())
    teacher, corpus = Translator.from_checkpoint(best_checkpoint(tiny_run)), Path(info["corpus"])
    pupil = Translator.from_checkpoint(best_checkpoint(student))
    assert count_parameters(pupil.model) < count_parameters(teacher.model) == info["teacher_params"]
    sources = list(corpora.read_lines(corpus / "train.en"))
    targets = list(corpora.read_lines(corpus / "train.ja"))
    assert len(sources) == len(targets) == 200
    expected = [o[0].tokens if (corpus / "TOKENIZED").exists() else o[0].text
                for o in teacher.translate(sources[:5], beam=2)]
    assert targets[:5] == expected  # train.ja = the teacher's beam outputs
    original, _ = corpora.resolve("sample")
    assert (corpus / "dev.ja").read_text() == (original / "dev.ja").read_text()
    losses = [r["train_loss"] for r in map(json.loads, (student / "metrics.jsonl").read_text().splitlines())
              if "train_loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0]  # it trains
    assert any(o[0].text for o in pupil.translate(SENTENCES))  # and translates


@pytest.mark.slow  # every row decoded at several thread counts
def test_compression_report(tiny_run, tmp_path):
    int8 = tmp_path / "int8.safetensors"
    ckpt.save(int8, *compress.quantize(best_checkpoint(tiny_run)))
    fp32 = _fp32_file(tiny_run, tmp_path / "fp32.safetensors")
    folder, _ = corpora.resolve("sample")
    report = compression_report([("fp32", fp32), ("int8", int8), ("again", fp32)], folder / "test.en",
                                folder / "test.ja", False, speed_lines=8, repeats=1, threads=[2, 1])
    rows = report["rows"]
    assert [r["label"] for r in rows] == ["fp32", "int8", "again"]
    assert rows[0]["params"] == rows[1]["params"] and rows[1]["quantized"]
    assert rows[1]["file_mb"] < rows[0]["file_mb"]
    for r in rows:
        assert 0 <= r["bleu_ja"] <= 100 and 0 <= r["chrf"] <= 100
        assert "hyps" not in r  # used for the tests, not stored
        for t in ("2", "1"):
            s = r["speed"][t]
            assert s["sent_per_s_greedy"] > 0 and s["sent_per_s_beam5"] > 0 and s["peak_rss_mb"] > 0
        assert r["speed"]["1"]["threads"] == 1
    # significance against the first row: the same checkpoint again differs by nothing, p = 1
    assert "vs_first" not in rows[0] and set(rows[1]["vs_first"]) == set(report["significance"])
    same = rows[2]["vs_first"]["chrf"]
    assert same["delta"] == 0 and same["p"] == 1.0
    assert rows[1]["vs_first"]["chrf"]["delta"] == pytest.approx(rows[1]["chrf"] - rows[0]["chrf"], abs=1e-6)
    table = format_markdown(report)
    assert len(table) == 2 + 3 + 2 and table[2].count("(1.00×)") == 4  # the first row against itself


def test_compress_report_threads_is_one_error(capsys):
    assert main(["compress-report", "x.safetensors", "--threads", "2,two"]) == 2
    assert "--threads" in capsys.readouterr().err
