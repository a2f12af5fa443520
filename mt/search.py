"""Greedy and batched beam search over the model contract (no model-specific branches).

Sentences that finish are dropped from the batch (reorder_state), so a batch costs only as
long as its slowest unfinished sentence. B = sentences, K = beam size, V = vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.profiler import record_function

from mt.state import expand_state, reorder_state
from mt.vocab import BOS, EOS


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # without BOS/EOS
    score: float  # length-normalised log-probability (raw when alpha = 0)
    log_prob: float


def length_penalty(length: int, alpha: float, kind: str) -> float:
    """Wu et al. 2016: ((5 + len) / 6)^α; or plain len^α (α = 1: average log-prob)."""
    if alpha == 0:
        return 1.0
    return ((5 + length) / 6) ** alpha if kind == "wu" else length ** alpha


def max_lengths(src_len: Tensor, a: float, b: int, cap: int) -> Tensor:
    """Per-sentence output limit a·|src| + b (EOS included), capped by the model's positions."""
    return torch.clamp((src_len.float() * a).long() + b, min=1, max=cap)


@torch.no_grad()
def greedy(model, src: Tensor, src_len: Tensor, max_len: Tensor) -> list[Hypothesis]:
    """Pick the most probable token at each step; EOS is forced at a sentence's max length."""
    B = src.size(0)
    state = model.encode(src, src_len)
    prev = torch.full((B,), BOS, dtype=torch.long, device=src.device)
    alive = torch.arange(B, device=src.device)  # sentence ids still decoding
    steps: list[tuple[Tensor, Tensor, Tensor]] = []  # per step: (alive ids, chosen tokens, their log-probs)
    for t in range(int(max_len.max())):
        logp, state = model.decode_step(prev, state)  # (A, V)
        with record_function("mt.search"):  # the bookkeeping, for `mt bench translate`'s breakdown
            forced = (t + 1 >= max_len[alive])
            logp[forced] = torch.where(torch.arange(logp.size(1), device=logp.device) == EOS, 0.0, float("-inf"))
            best_lp, best = logp.max(-1)
            steps.append((alive, best, best_lp))
            keep = (best != EOS).nonzero().squeeze(1)
            if len(keep) == 0:
                break
            if len(keep) < len(alive):
                state, alive = reorder_state(state, keep), alive[keep]
            prev = best[keep]
    return _greedy_hypotheses(steps, B, src.device)


def _greedy_hypotheses(steps: list[tuple[Tensor, Tensor, Tensor]], B: int, device: torch.device) -> list[Hypothesis]:
    """Per-step (ids, tokens, log-probs) → one Hypothesis per sentence, with one transfer at the end."""
    tokens = torch.full((B, len(steps)), EOS, dtype=torch.long, device=device)  # (B, steps)
    total = torch.zeros(B, dtype=torch.float64, device=device)
    for t, (ids, tok, lp) in enumerate(steps):
        tokens[ids, t] = tok
        total.index_add_(0, ids, lp.double())  # float64, in step order: as summing Python floats
    # a sentence leaves `alive` at its EOS, so its row is its tokens followed by EOS padding
    lengths = (tokens != EOS).sum(1).tolist()
    rows = zip(tokens.tolist(), lengths, total.tolist(), strict=True)
    return [Hypothesis(row[:n], lp, lp) for row, n, lp in rows]


@torch.no_grad()
def beam_search(model, src: Tensor, src_len: Tensor, max_len: Tensor, beam: int,
                alpha: float = 0.0, penalty: str = "wu", nbest: int = 1,
                patience: float = 0.0) -> list[list[Hypothesis]]:
    """Batched beam search; returns the n best finished hypotheses per sentence, best first.

    A sentence is done when no live hypothesis can still beat its n-th best finished one (live
    log-probs only fall, and no length penalty exceeds that of the sentence's max length), or at
    its max length. With patience p > 0 it is also done once ⌈p·beam⌉ (at least n) hypotheses have
    finished, ranked within the beam at their step: the rule of fairseq, of CTranslate2's `patience`
    and of Hugging Face's `early_stopping=True`, which decodes fewer steps but may miss a longer
    hypothesis that would have scored better. With alpha = 0 and beam 1 this is exactly greedy search.
    """
    B, K, device = src.size(0), beam, src.device
    state = model.encode(src, src_len)
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all K beams start identical: expand only the first
    history = torch.full((B * K, 0), BOS, dtype=torch.long, device=device)
    prev = torch.full((B,), BOS, dtype=torch.long, device=device)  # the first step runs once per sentence
    alive = torch.arange(B, device=device)
    # the n best finished scores of each sentence (-inf: none yet), float64 as Python floats
    fin_top = torch.full((B, nbest), float("-inf"), dtype=torch.float64, device=device)
    fin_count = torch.zeros(B, dtype=torch.long, device=device)  # finished hypotheses per sentence
    enough = max(nbest, math.ceil(patience * K)) if patience > 0 else None  # the count that ends a sentence
    lp_limit = torch.tensor([length_penalty(m, alpha, penalty) for m in max_len.tolist()],
                            dtype=torch.float64, device=device)
    ended: list[tuple[Tensor, Tensor, Tensor, float]] = []  # per step: (sentence ids, histories, raw scores, lp)
    for t in range(int(max_len.max())):
        logp, state = model.decode_step(prev, state)  # (A·K, V); the first step (B, V)
        if t == 0:  # the K identical beams of each sentence: one decoder row each, repeated after it
            logp, state = logp.repeat_interleave(K, dim=0), expand_state(state, K)  # (B·K, V)
        with record_function("mt.search"):  # top-k and reordering (mt/tools/profile.py)
            V = logp.size(1)
            forced = (t + 1 >= max_len[alive]).repeat_interleave(K)
            logp[forced] = torch.where(torch.arange(V, device=device) == EOS, 0.0, float("-inf"))
            cand = (scores.view(-1, 1) + logp).view(len(alive), K * V)  # (A, K·V)
            top_scores, top_ids = cand.topk(2 * K, dim=1)  # (A, 2K)
            top_beam, top_tok = top_ids // V, top_ids % V
            # finish EOS candidates ranked within the first K
            is_eos = ((top_tok == EOS) & torch.isfinite(top_scores))[:, :K]  # (A, K)
            lp = length_penalty(t + 1, alpha, penalty)
            a, r = is_eos.nonzero(as_tuple=True)
            if len(a):
                ended.append((alive[a], history[a * K + top_beam[a, r]], top_scores[a, r], lp))
                new = torch.where(is_eos, top_scores[:, :K].double() / lp, float("-inf"))  # (A, K)
                fin_top[alive] = torch.cat([fin_top[alive], new], 1).topk(nbest, dim=1).values
                fin_count[alive] += is_eos.sum(1)
            # continue with the K best non-EOS candidates
            rank = torch.arange(2 * K, device=device).expand_as(top_tok)
            order = torch.where(top_tok == EOS, rank + 2 * K, rank).argsort(dim=1)[:, :K]  # (A, K)
            scores = top_scores.gather(1, order)
            rows = (torch.arange(len(alive), device=device)[:, None] * K + top_beam.gather(1, order)).view(-1)
            new_tok = top_tok.gather(1, order).view(-1)
            done = _done(fin_top[alive, nbest - 1], scores, lp_limit[alive], max_len[alive], t)
            if enough is not None:
                done |= fin_count[alive] >= enough
            keep = (~done).nonzero().squeeze(1)
            if len(keep) == 0:
                break
            rows = rows.view(-1, K)[keep].view(-1)
            state = reorder_state(state, rows)
            history = torch.cat([history[rows], new_tok.view(-1, K)[keep].view(-1, 1)], 1)
            prev, scores, alive = history[:, -1], scores[keep], alive[keep]
    return _beam_hypotheses(ended, B, nbest)


def _done(nth: Tensor, scores: Tensor, lp_limit: Tensor, limit: Tensor, t: int) -> Tensor:
    """(A,) bool: sentence reached its limit or can no longer improve its n-best.

    nth (A,) n-th best finished score (-inf: fewer than n), scores (A, K) live log-probs,
    lp_limit (A,) length penalty at each sentence's max length, limit (A,) max lengths.
    """
    best_live = scores.max(1).values.double()  # (A,)
    bound = torch.where(best_live < 0, best_live / lp_limit, best_live)
    can_stop = torch.isfinite(nth) & ((nth >= bound) | ~torch.isfinite(best_live))
    return (t + 1 >= limit) | can_stop


def _beam_hypotheses(ended: list[tuple[Tensor, Tensor, Tensor, float]], B: int,
                     nbest: int) -> list[list[Hypothesis]]:
    """Finished candidates, in the order they ended → the n best per sentence (stable on ties)."""
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    for sids, hist, raw, lp in ended:
        for sid, tokens, r in zip(sids.tolist(), hist.tolist(), raw.tolist(), strict=True):
            finished[sid].append(Hypothesis(tokens, r / lp, r))
    return [sorted(f, key=lambda h: -h.score)[:nbest] for f in finished]
