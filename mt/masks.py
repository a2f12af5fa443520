"""The only place masks are built. One sense everywhere: True = may attend / is a real token."""

from __future__ import annotations

import torch


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths → (B, L) bool, True at real (non-pad) positions."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def causal_mask(size: int, device: torch.device | None = None) -> torch.Tensor:
    """(T, T) bool, True where query t may attend to key t' ≤ t (no peeking at the future)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()
