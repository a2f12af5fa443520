"""The rows of an output layer a target-vocabulary shortlist decodes over (mt/shortlist.py), for both families."""

from __future__ import annotations

import torch
from torch import Tensor


def project(h: Tensor, layer: torch.nn.Module, rows: tuple[Tensor, Tensor | None] | None) -> Tensor:
    """Decoder states (..., D) → logits over the whole target vocabulary (`layer`), or over a shortlist's `rows`."""
    return layer(h) if rows is None else torch.nn.functional.linear(h, *rows)


def output_rows(layer: torch.nn.Module, ids: Tensor) -> tuple[Tensor, Tensor | None]:
    """The rows `ids` of an output layer's weight (L, D) and bias (L,): a float nn.Linear, or an int8 one
    (torch's dynamic quantization), dequantized."""
    weight = layer.weight() if callable(layer.weight) else layer.weight
    bias = layer.bias() if callable(getattr(layer, "bias", None)) else getattr(layer, "bias", None)
    if weight.is_quantized:
        weight = weight.dequantize()
    return weight[ids].contiguous(), (bias[ids].contiguous() if bias is not None else None)
