"""Coverage reranking: an omission defence at decoding time (Wu et al. 2016, GNMT's coverage penalty).

A model that drops a clause still reads fluently, and its log-probability does not mind: the dropped
words simply got no attention. After beam search, each of the beam's finished hypotheses goes through
one teacher-forced pass with the decoder's last cross-attention recorded (mt/unk.py's `alignments`);
the penalty  β · Σ_j log(min(Σ_t a_tj, 1))  is 0 when every source word got at least its share of
attention and falls with each word the output ignores. Added to the length-normalised score, it reranks
the n-best so a translation that covers the source can win over a shorter, likelier one.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor, nn

from mt.search import Hypothesis
from mt.unk import alignments, cross_attention

FLOOR = 1e-3  # a source word with (almost) no attention costs β · log(0.001) ≈ -6.9 β, not -inf


def coverage_penalty(weights: Tensor, beta: float) -> float:
    """β · Σ_j log(min(Σ_t a_tj, 1)) over the source positions j of one (T, S) attention matrix."""
    if beta == 0 or weights.numel() == 0:
        return 0.0
    mass = weights.sum(0).clamp(min=FLOOR, max=1.0)  # (S,)
    return beta * float(torch.log(mass).sum())


@torch.no_grad()
def rerank(model: nn.Module, sources: list[list[int]], nbest: list[list[Hypothesis]], beta: float,
           device: torch.device, batch_size: int = 64) -> list[list[Hypothesis]]:
    """Each sentence's n-best with the coverage penalty added to its scores, best first (stable on ties).
    Unchanged for β = 0 or a model without attention; an empty source or hypothesis gets no penalty."""
    if beta == 0 or cross_attention(model) is None:
        return nbest
    items = [(i, k) for i, hyps in enumerate(nbest) for k, h in enumerate(hyps) if sources[i] and h.tokens]
    penalty: dict[tuple[int, int], float] = {}
    was_training = model.training
    model.eval()
    for start in range(0, len(items), batch_size):
        chunk = items[start: start + batch_size]
        weights = alignments(model, [sources[i] for i, _ in chunk], [nbest[i][k].tokens for i, k in chunk], device)
        for key, w in zip(chunk, weights, strict=True):
            penalty[key] = coverage_penalty(w, beta)
    model.train(was_training)
    out = []
    for i, hyps in enumerate(nbest):
        scored = [replace(h, score=h.score + penalty.get((i, k), 0.0)) for k, h in enumerate(hyps)]
        out.append(sorted(scored, key=lambda h: -h.score if math.isfinite(h.score) else math.inf))
    return out
