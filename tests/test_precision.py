"""train.precision on a CPU: bf16 only where the CPU runs it natively, else fp32 with one note."""

from __future__ import annotations

import torch

from mt import optim

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

