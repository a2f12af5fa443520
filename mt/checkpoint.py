"""Checkpoints: one safetensors file, weights as tensors, everything else as JSON metadata.

Loading never executes code from the file (no pickle). Writes go to a temp file that is
renamed into place, so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import base64
import json
import os
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
TEMP_SUFFIX = ".tmp"  # `save` writes <name><random>.tmp, then renames it


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that a killed process never finished.

    `save` writes `<name>.safetensors<random>.tmp` and renames it; after SIGKILL or a power cut the
    temporary file stays behind (the checkpoint it was replacing is intact). Called on resume.
    """
    stale = sorted(folder.glob(f"*.safetensors*{TEMP_SUFFIX}"))
    for p in stale:
        p.unlink()
    return stale


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
    meta = {"format": FORMAT, "version": VERSION, **meta, "tied": tied}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = files.temp_beside(path, TEMP_SUFFIX)
        os.close(fd)
        save_file(stored, tmp, metadata={"mt": json.dumps(meta, ensure_ascii=False)})
        os.chmod(tmp, files.NEW_FILE_MODE)  # save_file writes the file anew, with its own mode
        os.replace(tmp, path)
    except (OSError, SafetensorError) as e:  # no space, read-only folder, permission: the old file is intact
        raise MTError(f"cannot write {path}: {files.cause(e)}") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; one clear error if it is missing or not an mt checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise MTError(f"checkpoint not found: {path}")
    try:
        tensors = load_file(path)
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise MTError(f"{path}: not a checkpoint (safetensors: {e})") from None
    if "mt" not in header:
        raise MTError(f"{path}: a safetensors file but not an mt checkpoint (no 'mt' metadata)")
    meta = json.loads(header["mt"])
    if meta.get("format") != FORMAT:
        raise MTError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    if meta.get("sparse"):  # pruned matrices stored as bitmask + values: lossless, densified here
        tensors = codecs.densify(tensors, meta["sparse"])
    for name, source in meta.get("tied", {}).items():
        tensors[name] = tensors[source]
    return tensors, meta


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def sp_to_json(model: bytes | None) -> str | None:
    return base64.b64encode(model).decode() if model is not None else None


def sp_from_json(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text is not None else None


def model_from_meta(meta: dict[str, Any]) -> tuple[nn.Module, config_mod.Config]:
    """The untrained model a checkpoint's metadata describes (family, sizes, vocabularies), and its Config:
    the one place a model is rebuilt from a checkpoint."""
    cfg = config_mod.build(meta["config"])
    return build_model(cfg.model_type, cfg.model, len(meta["src_vocab"]), len(meta["tgt_vocab"])), cfg
