"""Compression into ordinary checkpoints: dynamic int8 quantization and magnitude pruning.

Quantization: torch's dynamic int8 (weights int8 per output channel, activations quantized on the
fly) for every nn.Linear and nn.GRU/nn.LSTM; embeddings int8 per row, dequantized at load. A tied
output projection (Press & Wolf 2017) is quantized like any Linear and its embedding reads the
same int8 matrix dequantized, so the tie is kept and stored once. Files hold int8 tensors +
scales + zero points, never pickled packed params; `load_quantized` re-packs them. CPU only.
Activation scales are computed per call, so an int8 translation can depend on its batch mates.

Pruning (See, Luong & Manning 2016): zero the smallest-magnitude entries of every weight matrix
(dim ≥ 2: Linear, RNN, embeddings; not biases or norms), ranked over all matrices at once
("global", their class-blind) or within each ("layer", class-uniform). Pruned matrices are stored
as a bitmask + the kept values (1 bit + 4·density bytes per entry); `densify` restores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.ao.nn.quantized import dynamic as nnqd

from mt import checkpoint as ckpt
from mt import codecs, corpora, data, experiments
from mt import config as config_mod
from mt.errors import MTError
from mt.optim import make_optimizer
from mt.step import train_step
from mt.vocab import Vocab


def resolve_source(target: str) -> Path:
    """A checkpoint file, or a run name/folder → that run's best checkpoint."""
    path = Path(target)
    return path if path.is_file() else experiments.best_checkpoint(experiments.find_run(target))


def save_compressed(tensors: dict[str, Tensor], meta: dict[str, Any], out: Path | None = None) -> Path:
    """Write a quantize / prune / prune_structured result to `out`, by default beside its source:
    int8.safetensors, pruned-<percent>.safetensors or structured-<percent>.safetensors; returns the path."""
    if out is None:
        kind = next(k for k in ("quantized", "structured", "pruned") if k in meta)
        name = "int8" if kind == "quantized" else f"{kind}-{round(meta[kind]['amount'] * 100)}"
        out = Path(meta["compressed_from"]).parent / f"{name}.safetensors"
    ckpt.save(out, tensors, meta)
    return out


def dense_bytes(model: nn.Module) -> int:
    """Bytes of the model's fp32 state dict, a tied matrix counted once (a weights-only file)."""
    seen = {t.untyped_storage().data_ptr(): t.numel() * t.element_size() for t in model.state_dict().values()}
    return sum(seen.values())


def stored_bytes(tensors: dict[str, Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


# -- quantization ----------------------------------------------------------------------

def _pack_int8(prefix: str, q: Tensor) -> dict[str, Tensor]:
    """A qint8 tensor → int8 values, float32 scales, int8 zero points (per channel or per tensor)."""
    if q.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scale, zero = q.q_per_channel_scales(), q.q_per_channel_zero_points()
    else:
        scale, zero = torch.tensor(q.q_scale()), torch.tensor(q.q_zero_point())
    return {f"{prefix}.int8": q.int_repr(), f"{prefix}.scale": scale.float(),
            f"{prefix}.zero_point": zero.to(torch.int8)}


def _int8_rows(w: Tensor) -> Tensor:
    """Symmetric int8 quantization with one scale per row (an embedding's per-token table)."""
    scale = (w.detach().abs().amax(1) / 127).clamp_min(torch.finfo(torch.float32).eps)
    q = torch.round(w.detach() / scale[:, None]).clamp(-127, 127).to(torch.int8)
    with codecs.quiet():
        return torch._make_per_channel_quantized_tensor(q, scale.double(), torch.zeros_like(scale, dtype=torch.long), 0)


def quantize_model(model: nn.Module) -> tuple[nn.Module, dict[str, Tensor], dict[str, Any]]:
    """Float model → (int8 model, tensors to store, structure for meta['quantized'])."""
    tied = {e: lin for e, emb in model.named_modules() if isinstance(emb, nn.Embedding)
            for lin, mod in model.named_modules() if isinstance(mod, nn.Linear) and mod.weight is emb.weight}
    qmodel = codecs.quantize_dynamic(model)
    stored: dict[str, Tensor] = {}
    structure: dict[str, Any] = {"scheme": "dynamic int8, per-channel weights", "linear": [], "rnn": [],
                                 "embeddings": {}, "engine": torch.backends.quantized.engine}
    for name, mod in qmodel.named_modules():
        if isinstance(mod, nnqd.Linear):
            w, b = mod._packed_params._weight_bias()
            stored.update(_pack_int8(f"{name}.weight", w))
            if b is not None:
                stored[f"{name}.bias"] = b.detach()
            structure["linear"].append(name)
        elif isinstance(mod, (nnqd.GRU, nnqd.LSTM)):
            wb = mod._weight_bias()
            for key, w in wb["weight"].items():
                stored.update(_pack_int8(f"{name}.{key}", w))
            stored.update({f"{name}.{k}": b.detach() for k, b in wb["bias"].items()})
            structure["rnn"].append(name)
        elif isinstance(mod, nn.Embedding):
            source = f"{tied[name]}.weight" if name in tied else f"{name}.weight"
            if name not in tied:
                stored.update(_pack_int8(source, _int8_rows(mod.weight)))
            structure["embeddings"][name] = source
    done = set(structure["linear"]) | set(structure["rnn"]) | set(structure["embeddings"])
    for key, value in model.state_dict().items():
        if key.rsplit(".", 1)[0] not in done:
            stored[key] = value
    codecs.set_int8(qmodel, stored, structure)  # the in-memory model is exactly what loading gives
    return qmodel, stored, structure


def quantize(checkpoint: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """A float checkpoint → (tensors, meta) of its int8 version, ready for checkpoint.save."""
    model, _, meta = ckpt.load_model(checkpoint, float_only=True)
    _, stored, structure = quantize_model(model)
    structure["size_ratio"] = round(dense_bytes(model) / stored_bytes(stored), 2)
    structure["params"] = sum(p.numel() for p in model.parameters())
    return ckpt.model_tensors(stored), ckpt.derived_meta(meta, checkpoint, {"quantized": structure})


# -- pruning ----------------------------------------------------------------------------

def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Weight matrices (dim ≥ 2) by name; a tied matrix appears once."""
    return {n: p for n, p in model.named_parameters() if p.dim() >= 2}


def magnitude_masks(params: dict[str, Tensor], amount: float, scope: str) -> dict[str, Tensor]:
    """True = keep: entries above the `amount` quantile of |w|, globally or per matrix."""
    if scope not in ("global", "layer"):
        raise MTError(f"--scope {scope!r}: valid values are global, layer")
    if not 0 <= amount < 1:
        raise MTError(f"--amount {amount}: must be in [0, 1)")

    def threshold(values: Tensor) -> float:
        k = int(round(amount * values.numel()))
        return torch.kthvalue(values, k).values.item() if k else -1.0

    if scope == "layer":
        return {n: p.detach().abs() > threshold(p.detach().abs().flatten()) for n, p in params.items()}
    cut = threshold(torch.cat([p.detach().abs().flatten() for p in params.values()]))
    return {n: p.detach().abs() > cut for n, p in params.items()}


def apply_masks(params: dict[str, Tensor], masks: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for n, p in params.items():
            if n in masks:  # structured pruning fine-tunes with no masks: its structure is the shapes
                p.mul_(masks[n])


def sparsity(model: nn.Module) -> tuple[float, float]:
    """(zero fraction of the weight matrices, zero fraction of all parameters)."""
    mats = list(prunable(model).values())
    zeros = sum(int((p == 0).sum()) for p in mats)
    total_zeros = sum(int((p == 0).sum()) for p in model.parameters())
    return zeros / sum(p.numel() for p in mats), total_zeros / sum(p.numel() for p in model.parameters())


def finetune_corpus(checkpoint: Path, distill: bool, device: str, log: Callable[[str], None]) -> Path | None:
    """With `distill`, the unpruned checkpoint's own beam translations of its training sources (cached and
    shared with `mt distill`): the pruned model then learns to imitate the model it was cut from."""
    if not distill:
        return None
    from mt.tools.distill import distilled_corpus

    return distilled_corpus(checkpoint, None, 0, device, log)


def prune(checkpoint: Path, amount: float, scope: str = "global", finetune_steps: int = 0,
          lr: float | None = None, device: str = "cpu", log: Callable[[str], None] = print, distill: bool = False
          ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Magnitude-prune a checkpoint (optionally fine-tune with the mask fixed) → (tensors, meta)."""
    model, cfg, meta = ckpt.load_model(checkpoint, float_only=True)
    params = prunable(model)
    masks = magnitude_masks(params, amount, scope)
    apply_masks(params, masks)
    if finetune_steps:
        finetune(model, cfg, meta, masks, finetune_steps, lr, device, log,
                 finetune_corpus(checkpoint, distill, device, log))
    tensors, sparse = ckpt.sparse_model_tensors(model.state_dict(), set(params))
    matrix_sparsity, all_sparsity = sparsity(model)
    info = {"amount": amount, "scope": scope, "finetune_steps": finetune_steps, "finetune_distilled": distill,
            "sparsity": round(matrix_sparsity, 4), "sparsity_all_params": round(all_sparsity, 4),
            "size_ratio": round(dense_bytes(model) / stored_bytes(tensors), 2)}
    return tensors, ckpt.derived_meta(meta, checkpoint, {"pruned": info, "sparse": sparse})


def finetune(model: nn.Module, cfg: config_mod.Config, meta: dict[str, Any], masks: dict[str, Tensor],
             steps: int, lr: float | None, device: str, log: Callable[[str], None], corpus: Path | None = None) -> float:
    """Train `steps` batches on the run's corpus (or `corpus`, a folder encoded with the checkpoint's own
    vocabularies, e.g. the unpruned model's translations) with the trainer's own step (loss, precision), a
    fresh optimiser warming up over the first 10 % of steps, then a cosine decay to zero at the last step (a
    fixed budget that ends on a small lr, as the default training does), re-applying the masks after each step."""
    if corpus:
        prep = data.prepare(cfg.data, corpus, log, {"src": Vocab.from_json(meta["src_vocab"]),
                                                    "tgt": Vocab.from_json(meta["tgt_vocab"])})
    else:
        corpus_dir, _ = corpora.resolve(cfg.data.corpus, exclude=cfg.data.exclude)
        prep = data.prepare(cfg.data, corpus_dir, log)
    if prep.src_vocab.to_json() != meta["src_vocab"] or prep.tgt_vocab.to_json() != meta["tgt_vocab"]:
        raise MTError(f"corpus {cfg.data.corpus} no longer gives the checkpoint's vocabularies; cannot fine-tune")
    train_data, dev = prep.split("train"), torch.device(device)
    model.to(dev).train()
    params = prunable(model)
    masks = {n: m.to(dev) for n, m in masks.items()}
    cfg = replace(cfg, train=replace(cfg.train, lr=lr or cfg.train.lr / 2, schedule="cosine",
                                     warmup_steps=max(1, steps // 10), decay_steps=steps))
    optimizer = make_optimizer(model, cfg.train)
    step, epoch, losses = 0, 0, []
    while step < steps:
        epoch += 1
        for idx in data.make_batches(train_data.src_lens, train_data.tgt_lens, cfg.train.batch_tokens,
                                     cfg.train.seed, 1000 + epoch, True, cfg.data.max_len):
            step += 1
            loss = train_step(model, optimizer, data.collate(train_data, idx).to(dev), cfg, step, epoch, dev).loss
            apply_masks(params, masks)
            losses.append(loss.item())
            if step >= steps:
                break
    log(f"fine-tuned {steps} steps with the {'mask' if masks else 'structure'} fixed: mean loss {sum(losses) / len(losses):.3f}")
    model.cpu().eval()
    return sum(losses) / len(losses)
