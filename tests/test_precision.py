"""train.precision and decode.precision on a CPU: bf16 only where the CPU runs it natively, else fp32 with
one note; a bf16 decoder gives the fp32 one's distributions to bf16's precision, for both model families."""

from __future__ import annotations

import pytest
import torch

from mt import checkpoint as ckpt
from mt import optim
from mt.cli import main
from mt.errors import MTError
from mt.experiments import best_checkpoint
from mt.tools import compress
from mt.translate import Translator, precision_note
from mt.vocab import BOS
from tests.helpers import cli_translate

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_bf16_on_a_cpu_without_native_bf16_falls_back_to_fp32_with_a_note(monkeypatch):
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: False)
    assert optim.use_bf16("bf16", CPU) is False
    note = optim.precision_note("bf16", CPU)
    assert "no native bf16" in note and "fp32" in note


def test_bf16_on_a_cpu_with_native_bf16_is_used_silently(monkeypatch):
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: True)
    assert optim.use_bf16("bf16", CPU) is True
    assert optim.precision_note("bf16", CPU) is None


def test_fp32_and_auto_never_use_bf16_on_a_cpu_nor_need_a_note(monkeypatch):
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: True)
    for precision in ("fp32", "auto"):
        assert optim.use_bf16(precision, CPU) is False
        assert optim.precision_note(precision, CPU) is None


def test_bf16_on_cuda_does_not_depend_on_the_cpu(monkeypatch):
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: False)
    assert optim.use_bf16("bf16", CUDA) is True



@torch.no_grad()
def test_bf16_decoding_keeps_the_fp32_distributions(tiny_run, monkeypatch):
    """Every float weight in bf16; the first two steps' next-token distributions agree with fp32's to within
    bf16's precision (total variation < 0.02) and pick the same token."""
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: True)
    path = best_checkpoint(tiny_run)
    fp32, bf16 = Translator.from_checkpoint(path), Translator.from_checkpoint(path, precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert all(p.dtype == torch.bfloat16 for p in bf16.model.parameters())
    src = torch.tensor([fp32.source_ids("I am a student.")[0], fp32.source_ids("He didn't come here.")[0][:5]])
    src_len = torch.tensor([src.size(1)] * 2)
    prev = torch.full((2,), BOS)
    states = fp32.model.encode(src, src_len), bf16.model.encode(src, src_len)
    for _ in range(2):
        (a, sa), (b, sb) = fp32.model.decode_step(prev, states[0]), bf16.model.decode_step(prev, states[1])
        assert b.dtype == torch.float32
        assert float((a.exp() - b.exp()).abs().sum(-1).max()) / 2 < 0.02
        assert torch.equal(a.argmax(-1), b.argmax(-1))
        prev, states = a.argmax(-1), (sa, sb)
    out = bf16.translate(["I am a student.", "He didn't come."])
    assert [len(o) for o in out] == [1, 1] and all(o[0].text for o in out)


def test_bf16_decoding_on_a_cpu_without_native_bf16_stays_fp32_with_a_note(tiny_run, monkeypatch, capsys):
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: False)
    tr = Translator.from_checkpoint(best_checkpoint(tiny_run), precision="bf16")
    assert tr.precision == "fp32" and "no native bf16" in precision_note(tr)
    assert precision_note(Translator.from_checkpoint(best_checkpoint(tiny_run))) is None
    out = cli_translate(["I am a student."], monkeypatch, capsys, "--run", str(tiny_run), "--precision", "bf16")
    assert len(out) == 1


def test_bf16_decoding_refuses_an_int8_checkpoint(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: True)
    tensors, meta = compress.quantize(best_checkpoint(tiny_run))
    ckpt.save(tmp_path / "int8.safetensors", tensors, meta)
    with pytest.raises(MTError, match="int8"):
        Translator.from_checkpoint(tmp_path / "int8.safetensors", precision="bf16")


def test_evaluate_in_bf16_reads_every_check_and_names_its_outputs(tiny_run, monkeypatch, capsys):
    """The whole `mt evaluate` path with bf16 weights: teacher-forced reads (unknown words, dropped words) too."""
    monkeypatch.setattr(optim, "native_bf16_cpu", lambda: True)
    assert main(["evaluate", "--run", str(tiny_run), "--split", "test", "--precision", "bf16"]) == 0
    cap = capsys.readouterr()
    assert "(bf16 weights)" in cap.err and "BLEU" in cap.out
    assert (tiny_run / "hyps-test.bf16.txt").exists() and (tiny_run / "eval-test.bf16.json").exists()
