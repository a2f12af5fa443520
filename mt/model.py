"""The Seq2Seq contract both families implement, and the two-entry dispatch.

    forward(src, src_len, tgt_in) -> logits (B, T, V)       teacher forcing
    encode(src, src_len) -> State                            run the encoder once
    decode_step(prev, state) -> (log_probs (B, V), State)    one output position

Each family's State is a dataclass whose tensors are batch-first, so `reorder_state`
(index_select on dim 0) serves beam expansion, pruning and dropping finished sentences.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from mt import rnn, transformer
from mt.errors import MTError

MODELS: dict[str, tuple[type, type]] = {
    "seq2seq": (rnn.RNNConfig, rnn.RNNSeq2Seq),
    "transformer": (transformer.TransformerConfig, transformer.Transformer),
}


def config_class(kind: str) -> type:
    if kind not in MODELS:
        raise MTError(f"unknown model {kind!r}; valid: {', '.join(MODELS)}")
    return MODELS[kind][0]


def build_model(kind: str, cfg: Any, src_vocab: int, tgt_vocab: int) -> nn.Module:
    """Instantiate a family's model from its config and the vocabulary sizes."""
    return MODELS[kind][1](cfg, src_vocab, tgt_vocab)


def reorder_state(state: Any, index: torch.Tensor) -> Any:
    """Select rows `index` of every tensor in a batch-first State (lists of tensors too)."""
    changes = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, torch.Tensor):
            changes[f.name] = value.index_select(0, index)
        elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
            changes[f.name] = [v.index_select(0, index) for v in value]
    return dataclasses.replace(state, **changes)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
