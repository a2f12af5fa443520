"""Structured pruning: remove whole attention heads and FFN neurons, giving a smaller *dense* Transformer.

Magnitude pruning (mt/tools/compress.py) zeroes single weights: the file shrinks, the matrices do not, so
decoding is no faster. Here whole units go (Michel et al. 2019 for heads, by weight norm rather than by
their gradient-based scores): in every attention module the heads whose Q/K/V rows and output columns have
the smallest L2 norm, in every FFN the neurons whose W1 row × W2 column norms are smallest. Every module
keeps the same number of heads and neurons, so the result is an ordinary Transformer config (n_heads,
head_dim, d_ff) and an ordinary checkpoint that every command loads; fine-tuning then trains it as is.
The RNN is not pruned here (its gates tie hidden units across four matrices per layer; not yet done).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mt import checkpoint as ckpt
from mt.errors import MTError
from mt.model import build_model, count_parameters
from mt.tools.compress import finetune, finetune_corpus
from mt.transformer import MultiHeadAttention, PositionwiseFeedForward, Transformer


def head_importance(attn: MultiHeadAttention) -> Tensor:
    """(h,) L2 norm of each head's weights: its Q, K, V rows and its output-projection columns."""
    h, d_k = attn.n_heads, attn.d_k
    fused = attn.qkv.weight if hasattr(attn, "qkv") else torch.cat([attn.q.weight, attn.kv.weight])
    rows = fused.view(-1, h, d_k, fused.size(1))  # (parts, h, d_k, D)
    cols = attn.out.weight.view(attn.out.weight.size(0), h, d_k)  # (D, h, d_k)
    return (rows.pow(2).sum((0, 2, 3)) + cols.pow(2).sum((0, 2))).sqrt()


def neuron_importance(ff: PositionwiseFeedForward) -> Tensor:
    """(d_ff,) how much each hidden neuron can pass on: ‖W1 row‖ · ‖W2 column‖."""
    return ff.w1.weight.norm(dim=1) * ff.w2.weight.norm(dim=0)


def _rows(parts: int, h: int, d_k: int, keep: Tensor) -> Tensor:
    """Row indices of the kept heads in a fused projection of `parts` blocks of h·d_k rows."""
    heads = (keep[:, None] * d_k + torch.arange(d_k)).flatten()  # (kept·d_k,)
    return torch.cat([p * h * d_k + heads for p in range(parts)])


def _projections(attn: MultiHeadAttention) -> list[tuple[str, int]]:
    """The module's input projections and how many h·d_k blocks each holds (self: q,k,v fused; cross: q, kv)."""
    return [("qkv", 3)] if hasattr(attn, "qkv") else [("q", 1), ("kv", 2)]


def _copy_attention(new: MultiHeadAttention, old: MultiHeadAttention, keep: Tensor) -> None:
    h, d_k = old.n_heads, old.d_k
    for name, parts in _projections(old):
        rows = _rows(parts, h, d_k, keep)
        getattr(new, name).weight.copy_(getattr(old, name).weight[rows])
        getattr(new, name).bias.copy_(getattr(old, name).bias[rows])
    new.out.weight.copy_(old.out.weight[:, _rows(1, h, d_k, keep)])
    new.out.bias.copy_(old.out.bias)


def _copy_ffn(new: PositionwiseFeedForward, old: PositionwiseFeedForward, keep: Tensor) -> None:
    new.w1.weight.copy_(old.w1.weight[keep])
    new.w1.bias.copy_(old.w1.bias[keep])
    new.w2.weight.copy_(old.w2.weight[:, keep])
    new.w2.bias.copy_(old.w2.bias)


def _top(scores: Tensor, n: int) -> Tensor:
    """The n highest-scoring units, in their original order (so amount 0 keeps the model as it was)."""
    return scores.topk(n).indices.sort().values


@torch.no_grad()
def shrink(model: Transformer, heads: int, d_ff: int) -> Transformer:
    """A smaller Transformer keeping `heads` heads per attention module and `d_ff` neurons per FFN."""
    cfg = model.cfg
    if not 1 <= heads <= cfg.n_heads or not 1 <= d_ff <= cfg.d_ff:
        raise MTError(f"structured pruning keeps 1..{cfg.n_heads} heads and 1..{cfg.d_ff} FFN neurons, "
                      f"got {heads} and {d_ff}")
    small_cfg = replace(cfg, n_heads=heads, head_dim=cfg.d_k, d_ff=d_ff)
    small = build_model("transformer", small_cfg, model.src_embed.num_embeddings, model.tgt_embed.num_embeddings)
    small.load_state_dict({k: v for k, v in model.state_dict().items() if not _in_pruned_unit(k)}, strict=False)
    for new, old in zip(small.modules(), model.modules(), strict=True):
        if isinstance(old, MultiHeadAttention):
            _copy_attention(new, old, _top(head_importance(old), heads))
        elif isinstance(old, PositionwiseFeedForward):
            _copy_ffn(new, old, _top(neuron_importance(old), d_ff))
    if cfg.tie_output:
        small.output.weight = small.tgt_embed.weight
    return small.eval()


def _in_pruned_unit(name: str) -> bool:
    return any(f".{part}." in f".{name}" for part in ("qkv", "q", "kv", "out", "w1", "w2"))


@torch.no_grad()
def pad_heads(model: Transformer) -> Transformer:
    """The same function with every attention module back at d_model / d_k heads (the removed ones zero):
    for engines that need h·d_k = d_model (CTranslate2)."""
    cfg = model.cfg
    if cfg.n_heads * cfg.d_k == cfg.d_model:
        return model
    full_cfg = replace(cfg, n_heads=cfg.d_model // cfg.d_k, head_dim=0)
    full = build_model("transformer", full_cfg, model.src_embed.num_embeddings, model.tgt_embed.num_embeddings)
    full.load_state_dict({k: v for k, v in model.state_dict().items() if not _in_pruned_unit(k) or ".ff." in k},
                         strict=False)
    for new, old in zip(full.modules(), model.modules(), strict=True):
        if isinstance(old, MultiHeadAttention):
            for p in new.parameters():
                p.zero_()
            h_new, d_k = new.n_heads, new.d_k
            for name, parts in _projections(old):
                rows = _rows(parts, h_new, d_k, torch.arange(old.n_heads))
                getattr(new, name).weight[rows] = getattr(old, name).weight
                getattr(new, name).bias[rows] = getattr(old, name).bias
            new.out.weight[:, : old.n_heads * d_k] = old.out.weight
            new.out.bias.copy_(old.out.bias)
    if cfg.tie_output:
        full.output.weight = full.tgt_embed.weight
    return full.eval()


def prune_structured(checkpoint: Path, amount: float, finetune_steps: int = 0, lr: float | None = None,
                     device: str = "cpu", log: Callable[[str], None] = print, distill: bool = False
                     ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Remove `amount` of the heads and FFN neurons of a Transformer checkpoint (optionally fine-tune) → (tensors, meta)."""
    if not 0 <= amount < 1:
        raise MTError(f"--amount must be in [0, 1), got {amount}")
    model, cfg, meta = ckpt.load_model(checkpoint, float_only=True)
    if cfg.model_type != "transformer":
        raise MTError("structured pruning removes Transformer heads and FFN neurons; this is a seq2seq model "
                      "(use magnitude pruning: mt prune RUN --amount X)")
    heads = max(1, round(cfg.model.n_heads * (1 - amount)))
    d_ff = max(1, round(cfg.model.d_ff * (1 - amount)))
    small = shrink(model, heads, d_ff)
    small_cfg = replace(cfg, model=small.cfg)
    log(f"kept {heads}/{cfg.model.n_heads} heads per attention module and {d_ff}/{cfg.model.d_ff} FFN neurons: "
        f"{count_parameters(small):,} parameters (was {count_parameters(model):,})")
    if finetune_steps:
        finetune(small, small_cfg, meta, {}, finetune_steps, lr, device, log,
                 finetune_corpus(checkpoint, distill, device, log))
    info = {"amount": amount, "heads": heads, "d_ff": d_ff, "finetune_steps": finetune_steps,
            "finetune_distilled": distill,
            "params": count_parameters(small), "params_before": count_parameters(model)}
    small_meta = ckpt.derived_meta(meta, checkpoint, {"config": small_cfg.to_dict(), "structured": info})
    return ckpt.model_tensors(small.state_dict()), small_meta

