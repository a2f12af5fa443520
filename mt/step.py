"""One optimiser update: the training step that the trainer, pruning fine-tuning and the benchmark share."""

from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple

import torch
from torch.profiler import record_function

from mt import data, memory
from mt.config import Config
from mt.errors import MTError
from mt.loss import smoothed_cross_entropy
from mt.optim import learning_rate, use_bf16
from mt.vocab import PAD


def token_loss(logits: torch.Tensor, batch: data.Batch, label_smoothing: float, n_tokens: int = 0) -> torch.Tensor:
    """Label-smoothed cross-entropy per real target token (padding ignored): the training loss.

    `n_tokens` divides the summed loss (default: the batch's own tokens; a micro-batch passes its whole batch's)."""
    V = logits.size(-1)
    return smoothed_cross_entropy(logits.reshape(-1, V), batch.tgt_out.view(-1), label_smoothing,  # (B*T, V)
                                  PAD) / (n_tokens or batch.n_tokens)


class Step(NamedTuple):
    """What one update reports: its loss (per target token) and the gradient norm before clipping."""

    loss: torch.Tensor
    grad_norm: float


def train_step(model, optimizer, batch: data.Batch, cfg: Config, step: int, epoch: int,
               dev: torch.device, lr_decays: int = 0) -> Step:
    """One optimiser update on `batch` as step `step` (1-based): lr, forward, loss, backward, clip.

    With train.micro_batches = k the batch's rows go through forward/backward in k chunks whose gradients add
    up to the whole batch's (the loss of each is divided by the whole batch's tokens): the same update, with
    about 1/k of the activation memory."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, cfg.train, lr_decays)
    optimizer.zero_grad(set_to_none=True)
    parts = batch.split(cfg.train.micro_batches)
    total = torch.zeros(())
    for i, part in enumerate(parts):
        # DDP: gradients are all-reduced once, on the last micro-batch
        sync = nullcontext() if i == len(parts) - 1 or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16(cfg.train.precision, dev)):
                logits = model(part.src, part.src_len, part.tgt_in)
            loss = token_loss(logits, part, cfg.train.label_smoothing, batch.n_tokens)
            if not torch.isfinite(loss):
                raise MTError(f"loss is {loss.item()} at step {step} (epoch {epoch}); "
                              f"stopped, the last good checkpoint is kept. Try a lower train.lr or train.clip_grad.")
            loss.backward()
            del logits
        total += loss.detach().cpu()
    with record_function("mt.optimizer"):  # a label for `mt bench`'s breakdown (mt/tools/profile.py)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_grad or float("inf"))
        optimizer.step()
    if cfg.train.trim_memory_every and step % cfg.train.trim_memory_every == 0:
        memory.trim()
    return Step(total, float(norm))
