"""The model families' configurations, importable without torch: `mt train` checks a config (and fails
on a typo) before it loads torch or touches data. Each family's model file builds from its dataclass here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mt.errors import MTError


@dataclass(frozen=True)
class RNNConfig:
    """Sizes and options of the RNN encoder–decoder."""

    cell: Literal["gru", "lstm"] = "lstm"
    emb_size: int = 256
    hidden_size: int = 512  # decoder size; a bidirectional encoder uses H/2 per direction
    n_layers: int = 2
    bidirectional: bool = True
    attention: Literal["none", "bahdanau", "luong"] = "luong"
    dropout: float = 0.3
    tie_output: bool = False  # needs emb_size == hidden_size

    def __post_init__(self) -> None:
        if self.tie_output and self.emb_size != self.hidden_size:
            raise MTError(f"config model.tie_output needs model.emb_size = model.hidden_size, got {self.emb_size} "
                          f"and {self.hidden_size}")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and options of the Transformer (defaults: the 3+3-layer, 256-wide reference)."""

    d_model: int = 256
    n_heads: int = 4
    d_ff: int = 1024
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    dropout: float = 0.1
    attention_dropout: float = 0.0
    norm: Literal["pre", "post"] = "pre"  # where layer norm sits around each residual block
    tie_output: bool = True  # share target embedding and output projection (Press & Wolf 2017)
    max_positions: int = 512
    head_dim: int = 0  # d_k; 0 = d_model / n_heads. A structurally pruned model keeps d_k with fewer heads

    def __post_init__(self) -> None:
        if not self.head_dim and self.d_model % self.n_heads:
            raise MTError(f"config model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})")

    @property
    def d_k(self) -> int:
        return self.head_dim or self.d_model // self.n_heads


CONFIGS: dict[str, type] = {"seq2seq": RNNConfig, "transformer": TransformerConfig}


def config_class(kind: str) -> type:
    if kind not in CONFIGS:
        raise MTError(f"unknown model {kind!r}; valid: {', '.join(CONFIGS)}")
    return CONFIGS[kind]
