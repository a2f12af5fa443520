"""Optimiser, learning-rate schedule and mixed precision: the trainer's numeric settings."""

from __future__ import annotations

import math

import torch


def learning_rate(step: int, cfg, decays: int = 0) -> float:
    """Linear warmup, then inverse-sqrt decay (Vaswani et al. 2017 §5.3), a cosine decay to zero at
    `decay_steps` (Loshchilov & Hutter 2017; a fixed budget ends on a small lr, good for averaging), constant,
    or `plateau`: constant × decay_factor^decays, where the trainer counts a decay each time dev BLEU has not
    improved for decay_patience epochs (the halving of Luong et al. 2015 and Wu et al. 2016; JoeyNMT's plateau)."""
    step = max(step, 1)
    warm = min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.schedule == "inverse_sqrt" and cfg.warmup_steps:
        return cfg.lr * min(step / cfg.warmup_steps, math.sqrt(cfg.warmup_steps / step))
    if cfg.schedule == "cosine":
        if step <= cfg.warmup_steps:
            return cfg.lr * warm
        span = max(cfg.decay_steps - cfg.warmup_steps, 1)
        done = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * done))
    if cfg.schedule in ("constant", "inverse_sqrt"):
        return cfg.lr * warm
    return cfg.lr * warm * cfg.decay_factor ** decays  # plateau


def native_bf16_cpu() -> bool:
    """oneDNN runs bf16 matmuls natively here (AVX-512 or AMX). Elsewhere (an AVX2-only CPU) it emulates
    them: on a 2-core AMD EPYC a bf16 matmul ran at 0.84 GFLOP/s against fp32's 56 (docs/speed.md)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def use_bf16(precision: str, dev: torch.device) -> bool:
    """bf16 autocast: asked for (on a CPU only where it is native, see precision_note), or `auto` on a CUDA
    device that supports it."""
    if precision == "auto":
        return dev.type == "cuda" and torch.cuda.is_bf16_supported()
    return precision == "bf16" and (dev.type != "cpu" or native_bf16_cpu())


def precision_note(precision: str, dev: torch.device) -> str | None:
    """What to tell the user when train.precision = "bf16" falls back to fp32 on this CPU, else None."""
    if precision == "bf16" and not use_bf16(precision, dev):
        return (f"train.precision = \"bf16\", but this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native "
                "bf16 and would emulate it at a fraction of fp32's speed: training in fp32 (results differ from "
                "a bf16 run in the last digits)")
    return None


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    params = list(model.parameters())
    # one fused kernel per parameter instead of ~10 element-wise passes (torch ≥ 2.4 on CPU and CUDA)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return cls(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=fused)
