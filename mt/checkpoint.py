"""Checkpoints: one safetensors file, weights as tensors, everything else as JSON metadata.

This module alone knows the layout: a model's weights are the tensors named `model.<state-dict key>`
(a training checkpoint adds `optim.*` and `rng.*`), tensors sharing storage are stored once (meta
'tied'), pruned matrices may be stored as bitmask + values (meta 'sparse'), an int8 model as int8
values + scales (meta 'quantized'). Loading never executes code from the file (no pickle). Writes go
to a temp file that is renamed into place, so a kill at any moment leaves the previous file intact.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from mt import codecs, files
from mt import config as config_mod
from mt.errors import MTError
from mt.model import build_model

FORMAT = "mt-checkpoint"
VERSION = 1
TEMP_SUFFIX = ".tmp"  # writes go to <name><random>.tmp, then are renamed
MODEL = "model."  # the prefix of the model's weights among a checkpoint's tensors
# the metadata that describes a model (what it is, how it reads and writes text), not how it was trained
KEEP_META = ("config", "src_vocab", "tgt_vocab", "src_sp", "tgt_sp", "corpus_tokenized")
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


# -- files -------------------------------------------------------------------------------------

def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that a killed process never finished.

    Writes go to `<name>.safetensors<random>.tmp`, then are renamed; after SIGKILL or a power cut the
    temporary file stays behind (the checkpoint it was replacing is intact). Called on resume.
    """
    stale = sorted(folder.glob(f"*.safetensors*{TEMP_SUFFIX}"))
    for p in stale:
        p.unlink()
    return stale


def _write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """`write(temp file name)` beside `path`, then rename it onto `path`; a failure leaves `path` as it was."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = files.temp_beside(path, TEMP_SUFFIX)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, files.NEW_FILE_MODE)  # save_file writes the file anew, with its own mode
        os.replace(tmp, path)
    except (OSError, SafetensorError) as e:  # no space, read-only folder, permission: the old file is intact
        raise MTError(f"cannot write {path}: {files.cause(e)}") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Atomically write tensors + JSON metadata; tensors sharing storage are stored once."""
    stored, tied, seen = {}, {}, {}
    for name, t in tensors.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)) if t.numel() else None
        if key is not None and key in seen:
            tied[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        stored[name] = t.detach().cpu().contiguous()
    text = json.dumps({"format": FORMAT, "version": VERSION, **meta, "tied": tied}, ensure_ascii=False)
    _write_atomically(path, lambda tmp: save_file(stored, tmp, metadata={"mt": text}))


def copy(src: Path, dst: Path) -> None:
    """Atomically replace `dst` with a copy of checkpoint `src` (a run's `final`)."""
    _write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


def _checked(path: Path, header: dict[str, str]) -> dict[str, Any]:
    """The 'mt' metadata of a safetensors header; one clear error if it is not an mt checkpoint."""
    if "mt" not in header:
        raise MTError(f"{path}: a safetensors file but not an mt checkpoint (no 'mt' metadata)")
    meta = json.loads(header["mt"])
    if meta.get("format") != FORMAT:
        raise MTError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return meta


def read_meta(path: Path) -> dict[str, Any]:
    """A checkpoint's metadata, read from the file's header alone (no tensor is loaded)."""
    path = Path(path)
    if not path.is_file():
        raise MTError(f"checkpoint not found: {path}")
    try:
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise MTError(f"{path}: not a checkpoint (safetensors: {e})") from None
    return _checked(path, header)


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint (pruned matrices densified, ties restored); one clear error if it is missing or not
    an mt checkpoint."""
    path = Path(path)
    meta = read_meta(path)
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise MTError(f"{path}: not a checkpoint (safetensors: {e})") from None
    if meta.get("sparse"):  # pruned matrices stored as bitmask + values: lossless, densified here
        tensors = codecs.densify(tensors, meta["sparse"])
    for name, source in meta.get("tied", {}).items():
        tensors[name] = tensors[source]
    return tensors, meta


def model_bytes(path: Path) -> int:
    """Bytes of a checkpoint file's model tensors (no optimiser state), read from the header alone."""
    total = 0
    with safe_open(path, framework="pt") as f:
        for key in f.keys():
            if key.startswith(MODEL):
                piece = f.get_slice(key)
                n = 1
                for d in piece.get_shape():
                    n *= d
                total += n * DTYPE_BYTES[piece.get_dtype()]
    return total


# -- the layout of a model's weights -----------------------------------------------------------

def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors named `<prefix><key>`, by key."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def model_tensors(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A model's weights (state-dict keys) as checkpoint tensors, ready for `save`."""
    return {f"{MODEL}{k}": v for k, v in weights.items()}


def model_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's weights (state-dict keys) among a checkpoint's tensors."""
    return prefixed(tensors, MODEL)


def sparse_model_tensors(weights: dict[str, torch.Tensor], matrices: set[str]) -> tuple[dict[str, torch.Tensor],
                                                                                      dict[str, Any]]:
    """(checkpoint tensors, meta['sparse']) of a pruned model: the `matrices` that are zero often enough
    bitmask-packed (codecs.sparse_pack), tied weights as aliases; `load` densifies them."""
    tensors, seen = {}, {}
    sparse: dict[str, Any] = {"format": "bitmask+values", "shapes": {}, "aliases": {}}
    for key, value in weights.items():
        name, ident = f"{MODEL}{key}", (value.untyped_storage().data_ptr(), value.storage_offset(), value.shape)
        if ident in seen:
            sparse["aliases"][name] = seen[ident]
            continue
        seen[ident] = name
        if key in matrices and (value == 0).float().mean() > 1 / 32:  # 1 mask bit < 4 bytes saved per zero
            tensors[f"{name}.mask"], tensors[f"{name}.values"] = codecs.sparse_pack(value)
            sparse["shapes"][name] = list(value.shape)
        else:
            tensors[name] = value
    return tensors, sparse


def save_model(path: Path, weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Atomically write a model's weights (a state dict) and its metadata: a weights-only checkpoint."""
    save(path, model_tensors(weights), meta)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A float checkpoint's model weights, as a state dict."""
    return model_weights(load(path)[0])


# -- models ------------------------------------------------------------------------------------

def sp_to_json(model: bytes | None) -> str | None:
    return base64.b64encode(model).decode() if model is not None else None


def sp_from_json(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text is not None else None


def model_from_meta(meta: dict[str, Any]) -> tuple[nn.Module, config_mod.Config]:
    """The untrained model a checkpoint's metadata describes (family, sizes, vocabularies), and its Config:
    the one place a model is rebuilt from a checkpoint."""
    cfg = config_mod.build(meta["config"])
    return build_model(cfg.model_type, cfg.model, len(meta["src_vocab"]), len(meta["tgt_vocab"])), cfg


def load_model(path: Path, device: str = "cpu", float_only: bool = False
               ) -> tuple[nn.Module, config_mod.Config, dict[str, Any]]:
    """Checkpoint → (model in eval mode on `device`, Config, metadata): float, pruned (densified by `load`)
    or int8; `float_only` refuses an int8 one (compression starts from the float model)."""
    tensors, meta = load(path)
    model, cfg = model_from_meta(meta)
    weights = model_weights(tensors)
    if meta.get("quantized"):
        if float_only:
            raise MTError(f"{path} is already quantized; compress the float checkpoint it came from")
        if torch.device(device).type != "cpu":
            raise MTError(f"{path} is int8-quantized: torch runs it on the CPU only (--device cpu)")
        model = codecs.load_quantized(model, weights, meta)
    else:
        model.load_state_dict(weights)
    return model.to(device).eval(), cfg, meta


def derived_meta(meta: dict[str, Any], source: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a model made from checkpoint `source` (compressed, pruned, …): what describes the model,
    the source it came from, then `changes` (what was done; a changed `config`)."""
    return {**{k: meta[k] for k in KEEP_META if k in meta}, "compressed_from": str(source), **changes}


def average(paths: list[Path]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Element-wise mean of several checkpoints' model weights (summed in float64, cast back to the last
    one's dtypes) and the last one's metadata; a tied weight stays one tensor."""
    total: dict[str, torch.Tensor] = {}
    weights: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for path in paths:
        tensors, meta = load(path)
        weights = model_weights(tensors)
        if total and {k: v.shape for k, v in weights.items()} != {k: v.shape for k, v in total.items()}:
            raise MTError(f"cannot average {path} with {paths[0]}: their models have different weights")
        total = {k: total[k] + v.double() if total else v.double() for k, v in weights.items()}
    averaged = {k: (v / len(paths)).to(weights[k].dtype) for k, v in total.items()}
    for name, source in meta.get("tied", {}).items():  # one tensor in the file, one after averaging
        if name.startswith(MODEL) and source.startswith(MODEL):
            averaged[name.removeprefix(MODEL)] = averaged[source.removeprefix(MODEL)]
    return averaged, {k: v for k, v in meta.items() if k not in ("format", "version", "tied")}
