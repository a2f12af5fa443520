"""The checkpoint file format's own codecs: int8 + scales (quantized models) and bitmask + values (pruned ones).

`checkpoint.load` densifies pruned matrices and `checkpoint.load_model` rebuilds int8 models with these;
the tools that make such checkpoints (mt/tools/compress.py) encode with them. Nothing here is pickled:
int8 tensors, float scales and int8 zero points are stored, and re-packed into torch's quantized
modules at load (CPU only).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mt.errors import MTError

QUANT_SUFFIXES = (".int8", ".scale", ".zero_point")
SPARSE_SUFFIXES = (".mask", ".values")


@contextmanager
def quiet() -> Iterator[None]:
    """torch.ao quantization works but warns that it moves to torchao; keep user output clean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def quantize_dynamic(model: nn.Module) -> nn.Module:
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    with quiet():
        return torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear: qconfig, nn.GRU: qconfig, nn.LSTM: qconfig}, dtype=torch.qint8)


def unpack_int8(weights: dict[str, Tensor], prefix: str) -> Tensor:
    values, scale, zero = (weights[prefix + s] for s in QUANT_SUFFIXES)
    with quiet():
        if scale.dim() == 0:
            return torch._make_per_tensor_quantized_tensor(values, float(scale), int(zero))
        return torch._make_per_channel_quantized_tensor(values, scale.double(), zero.long(), 0)


# -- int8 ------------------------------------------------------------------------------

def set_int8(qmodel: nn.Module, weights: dict[str, Tensor], structure: dict[str, Any]) -> None:
    """Re-pack stored int8 tensors into a freshly quantized model; dequantize the embeddings."""
    modules = dict(qmodel.named_modules())
    with quiet():
        for name in structure["linear"]:
            modules[name].set_weight_bias(unpack_int8(weights, f"{name}.weight"), weights.get(f"{name}.bias"))
        for name in structure["rnn"]:
            keys = modules[name]._weight_bias()
            values = {k: unpack_int8(weights, f"{name}.{k}") for k in keys["weight"]}
            values.update({k: weights[f"{name}.{k}"] for k in keys["bias"]})
            modules[name].set_weight_bias(values)
    with torch.no_grad():
        for name, source in structure["embeddings"].items():
            modules[name].weight.copy_(unpack_int8(weights, source).dequantize())


def load_quantized(model: nn.Module, weights: dict[str, Tensor], meta: dict[str, Any]) -> nn.Module:
    """Float model skeleton + stored int8 tensors → the quantized model `quantize` produced."""
    structure = meta["quantized"]
    plain = {k: v for k, v in weights.items() if not k.endswith(QUANT_SUFFIXES)}
    missing, unexpected = model.load_state_dict(plain, strict=False)
    owners = set(structure["linear"]) | set(structure["rnn"]) | set(structure["embeddings"])
    if unexpected or any(k.rsplit(".", 1)[0] not in owners for k in missing):
        raise MTError(f"quantized checkpoint does not fit the model "
                      f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    qmodel = quantize_dynamic(model)
    set_int8(qmodel, weights, structure)
    return qmodel


# -- sparse -----------------------------------------------------------------------------

def sparse_pack(w: Tensor) -> tuple[Tensor, Tensor]:
    """Dense matrix → (packed bitmask uint8, nonzero values in row-major order)."""
    mask = (w != 0).flatten()
    return torch.from_numpy(np.packbits(mask.numpy())), w.flatten()[mask].clone()


def densify(tensors: dict[str, Tensor], sparse: dict[str, Any]) -> dict[str, Tensor]:
    """Undo `sparse_pack` for every matrix listed in meta['sparse'] (called by checkpoint.load)."""
    out = {k: v for k, v in tensors.items() if not k.endswith(SPARSE_SUFFIXES)}
    for name, shape in sparse["shapes"].items():
        bits, values = tensors[f"{name}.mask"], tensors[f"{name}.values"]
        mask = torch.from_numpy(np.unpackbits(bits.numpy(), count=math.prod(shape)).astype(bool))
        dense = torch.zeros(math.prod(shape), dtype=values.dtype)
        dense[mask] = values
        out[name] = dense.view(shape)
    for name, source in sparse.get("aliases", {}).items():
        out[name] = out[source]
    return out
