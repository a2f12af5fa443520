"""The Seq2Seq contract both families implement (`Seq2Seq` below), and the two-entry dispatch.

    forward(src, src_len, tgt_in) -> logits (B, T, V)       teacher forcing
    encode(src, src_len) -> State                            run the encoder once
    decode_step(prev, state) -> (log_probs (B, V), State)    one output position
    restrict_output(ids | None)                              decode_step over the target ids `ids` alone (a shortlist)
    max_output_positions() -> int                            longest output the model can position
    attention_layers() / attention_module(layer, kind)       the attention to read (unknown-word copy, plots)

Each family's State is a dataclass whose tensors are batch-first, so `reorder_state`
(index_select on dim 0) serves beam expansion, pruning and dropping finished sentences.
A State may keep some tensors once per sentence rather than once per hypothesis (fields made
with `per_sentence()`, e.g. the Transformer's encoder keys/values, which all K beams of a sentence
share): it then has a `group` field, the hypotheses per sentence row, which `expand_state` sets.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from torch import Tensor, nn

from mt import rnn, transformer
from mt.errors import MTError
from mt.state import expand_state, per_sentence, reorder_state  # noqa: F401  (the contract's state helpers)


class Seq2Seq(Protocol):
    """What search, the trainer, unknown-word copying and attention plots call on a model: nothing else."""

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: src (B, S), src_len (B,), tgt_in (B, T) → logits (B, T, V)."""

    def encode(self, src: Tensor, src_len: Tensor) -> Any:
        """Run the encoder once: a batch-first State dataclass (see mt/state.py)."""

    def decode_step(self, prev: Tensor, state: Any) -> tuple[Tensor, Any]:
        """prev (B,) → log-probabilities (B, V) of the next token and the advanced State."""

    def restrict_output(self, ids: Tensor | None) -> None:
        """Until called with None, decode_step's log-probs are over the target ids `ids` (L,) alone, normalised over
        them (mt/shortlist.py): (B, L)."""

    def max_output_positions(self) -> int:
        """The longest target sequence (BOS included) the model can position."""

    def attention_layers(self) -> int:
        """Decoder layers with an encoder–decoder attention (0: a model without attention)."""

    def attention_module(self, layer: int, kind: Literal["cross", "self"] = "cross") -> nn.Module | None:
        """Decoder layer `layer`'s (1-based) attention, or None where the model has none. Setting its `record`
        makes the next `forward` keep the weights in its `weights`: (B, h, T, S), or (B, T, S) for one head."""


MODELS: dict[str, type] = {"seq2seq": rnn.RNNSeq2Seq, "transformer": transformer.Transformer}


def build_model(kind: str, cfg: Any, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    """Instantiate a family's model from its config (mt/model_config.py) and the vocabulary sizes."""
    if kind not in MODELS:
        raise MTError(f"unknown model {kind!r}; valid: {', '.join(MODELS)}")
    return MODELS[kind](cfg, src_vocab, tgt_vocab)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
