"""The fused label-smoothed cross-entropy equals F.cross_entropy in value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mt import loss as loss_mod
from mt.loss import smoothed_cross_entropy


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("chunk", [1 << 22, 40])  # one chunk, and rows split over many
def test_matches_torch(eps, chunk, monkeypatch):
    monkeypatch.setattr(loss_mod, "CHUNK_ELEMENTS", chunk)
    torch.manual_seed(0)
    N, V = 37, 11
    target = torch.randint(1, V, (N,))
    target[::5] = 0  # ignored rows (padding)
    x = (torch.randn(N, V) * 4).requires_grad_()
    y = x.detach().clone().requires_grad_()
    ours = smoothed_cross_entropy(x, target, eps, 0)
    ref = F.cross_entropy(y, target, ignore_index=0, label_smoothing=eps, reduction="sum")
    (ours * 0.5).backward()
    (ref * 0.5).backward()
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-5)
    assert torch.allclose(x.grad, y.grad, atol=1e-6)
    assert (x.grad[::5] == 0).all()


def test_bf16_logits_get_bf16_grad():
    torch.manual_seed(0)
    x = torch.randn(6, 9).bfloat16().requires_grad_()
    target = torch.tensor([1, 2, 0, 3, 4, 5])
    ours = smoothed_cross_entropy(x, target, 0.1, 0)
    ref = F.cross_entropy(x.float(), target, ignore_index=0, label_smoothing=0.1, reduction="sum")
    assert ours.dtype == torch.float32 and torch.allclose(ours, ref, atol=1e-5)
    ours.backward()
    assert x.grad.dtype == torch.bfloat16
