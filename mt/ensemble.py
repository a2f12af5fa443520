"""Ensembles: several models decoding as one (as fairseq, OpenNMT-py, Marian and Sockeye do).

At every step each member scores the next token and the ensemble combines them, with weights Σ w_m = 1
(equal by default), in one of two ways:
- `prob` (default, fairseq's): the log of the weighted mean of their probabilities, log Σ_m w_m p_m(y | x, y<t);
- `logprob` (OpenNMT-py's and Marian's log-linear combination): the weighted mean of their log-probabilities,
  Σ_m w_m log p_m, renormalized (log_softmax) so that scores stay log-probabilities (a product of experts:
  a token needs every member's support).
Members may be
of different families (a Transformer and an RNN): each keeps its own State, reordered with the others
(`members()` in mt/state.py), so search and trainer never learn they hold an ensemble. Members share
the source and target vocabularies and pipelines (checked where they are loaded, mt/translate.py).
Unknown-word copying and attention plots read the first member that has attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from mt.errors import MTError
from mt.state import members


@dataclass
class EnsembleState:
    """Each member's own State, in member order."""

    states: list[Any] = members()


COMBINE = ("prob", "logprob")


class Ensemble(nn.Module):
    """Implements the mt.model contract over several models with one target vocabulary."""

    def __init__(self, models: list[nn.Module], weights: list[float] | None = None,
                 combine: Literal["prob", "logprob"] = "prob") -> None:
        super().__init__()
        if combine not in COMBINE:
            raise MTError(f"--combine must be one of {', '.join(COMBINE)}, got {combine!r}")
        weights = weights or [1.0] * len(models)
        if len(weights) != len(models):
            raise MTError(f"--weights: {len(weights)} weights for {len(models)} models")
        if any(w <= 0 for w in weights):
            raise MTError(f"--weights must be positive, got {weights}")
        self.models = nn.ModuleList(models)
        self.combine = combine
        self.weights = [w / sum(weights) for w in weights]
        self.register_buffer("log_weights", torch.tensor([math.log(w) for w in self.weights]), persistent=False)

    def _mix(self, log_probs: list[Tensor]) -> Tensor:
        """Members' log-probs (M of (..., V)) → the ensemble's (..., V): log Σ_m w_m p_m computed stably in
        log space, or log_softmax(Σ_m w_m log p_m)."""
        if len(log_probs) == 1:  # an ensemble of one is that model, bit for bit
            return log_probs[0].float()
        stacked = torch.stack([lp.float() for lp in log_probs])  # (M, ..., V)
        shape = (-1,) + (1,) * (stacked.dim() - 1)
        if self.combine == "logprob":
            return (stacked * self.log_weights.exp().view(shape)).sum(0).log_softmax(-1)
        return torch.logsumexp(stacked + self.log_weights.view(shape), dim=0)

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: the mixture's log-probabilities (B, T, V) (a log_softmax of them is themselves)."""
        return self._mix([m(src, src_len, tgt_in).float().log_softmax(-1) for m in self.models])

    def encode(self, src: Tensor, src_len: Tensor) -> EnsembleState:
        return EnsembleState([m.encode(src, src_len) for m in self.models])

    def decode_step(self, prev: Tensor, state: EnsembleState) -> tuple[Tensor, EnsembleState]:
        """prev (B,) → the mixture's log-probs (B, V) and every member's advanced State."""
        steps = [m.decode_step(prev, s) for m, s in zip(self.models, state.states)]
        return self._mix([lp for lp, _ in steps]), EnsembleState([s for _, s in steps])

    def restrict_output(self, ids: Tensor | None) -> None:
        """Every member decodes over the target ids `ids` alone (mt/shortlist.py), or over all (None)."""
        for m in self.models:
            m.restrict_output(ids)

    def max_output_positions(self) -> int:
        return min(m.max_output_positions() for m in self.models)

    def _reader(self) -> nn.Module | None:
        return next((m for m in self.models if m.attention_layers()), None)

    def attention_layers(self) -> int:
        reader = self._reader()
        return reader.attention_layers() if reader else 0

    def attention_module(self, layer: int, kind: str = "cross") -> nn.Module | None:
        reader = self._reader()
        return reader.attention_module(layer, kind) if reader else None
