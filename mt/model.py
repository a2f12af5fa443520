"""The Seq2Seq contract both families implement, and the two-entry dispatch.

    forward(src, src_len, tgt_in) -> logits (B, T, V)       teacher forcing
    encode(src, src_len) -> State                            run the encoder once
    decode_step(prev, state) -> (log_probs (B, V), State)    one output position

Each family's State is a dataclass whose tensors are batch-first, so `reorder_state`
(index_select on dim 0) serves beam expansion, pruning and dropping finished sentences.
A State may keep some tensors once per sentence rather than once per hypothesis (fields made
with `per_sentence()`, e.g. the Transformer's encoder keys/values, which all K beams of a sentence
share): it then has a `group` field, the hypotheses per sentence row, which `expand_state` sets.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mt import rnn, transformer
from mt.errors import MTError
from mt.state import expand_state, per_sentence, reorder_state  # noqa: F401  (the contract's state helpers)

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


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
