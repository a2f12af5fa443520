"""Label-smoothed cross-entropy (Szegedy et al. 2016) fused into one autograd function.

Per real target position with logits x (V,), gold y, smoothing ε and lse = log Σ exp x:
    loss = (1 − ε)(lse − x_y) + (ε / V) Σ_v (lse − x_v) = lse − (1 − ε) x_y − (ε / V) Σ_v x_v
    ∂loss/∂x = softmax(x) − (1 − ε) onehot(y) − ε / V
the value F.cross_entropy(..., label_smoothing=ε) computes, without its fp32 log-prob tensor kept for
backward or its separate passes: forward keeps only the (bf16 or fp32) logits and lse, computed in
fp32 over row chunks; backward writes the gradient in the logits' dtype. N = rows, V = vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK_ELEMENTS = 1 << 22  # rows are processed in chunks of ≈ 4M logits (16 MB in fp32)


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Summed label-smoothed cross-entropy over rows whose target is not `ignore_index`."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, eps: float, ignore_index: int) -> Tensor:
        N, V = logits.shape
        real = target != ignore_index  # (N,)
        lse = torch.empty(N, dtype=torch.float32, device=logits.device)
        total = logits.new_zeros((), dtype=torch.float32)
        rows = max(1, CHUNK_ELEMENTS // V)
        for start in range(0, N, rows):
            x = logits[start: start + rows].float()  # (n, V)
            lse[start: start + rows] = part = torch.logsumexp(x, -1)
            gold = x.gather(1, target[start: start + rows].clamp_min(0)[:, None]).squeeze(1)
            loss = part - (1 - eps) * gold - (eps / V) * x.sum(-1)
            total += torch.where(real[start: start + rows], loss, 0.0).sum()
        ctx.save_for_backward(logits, target, lse, real)
        ctx.eps = eps
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
        logits, target, lse, real = ctx.saved_tensors
        N, V = logits.shape
        eps = ctx.eps
        out = torch.empty_like(logits)
        rows = max(1, CHUNK_ELEMENTS // V)
        for start in range(0, N, rows):
            end = min(start + rows, N)
            g = torch.sub(logits[start:end], lse[start:end, None]).exp_().sub_(eps / V)  # fp32 (n, V)
            g.scatter_add_(1, target[start:end].clamp_min(0)[:, None],
                           torch.full((end - start, 1), eps - 1.0, device=g.device))
            out[start:end] = g.mul_(torch.where(real[start:end], grad.float(), 0.0)[:, None])
        return out, None, None, None


def smoothed_cross_entropy(logits: Tensor, target: Tensor, eps: float, ignore_index: int) -> Tensor:
    """Sum over non-ignored rows of label-smoothed cross-entropy; logits (N, V), target (N,)."""
    return _SmoothedCrossEntropy.apply(logits, target, eps, ignore_index)
