"""`mt bench train`: training throughput, model FLOPs, matmul peak, padding and peak RSS.

Training runs in a fresh (spawned) process, so its peak RSS is the training's own: `warmup`
optimiser steps, then `repeats` timed passes over the same `steps` token-budget batches of the
real data pipeline, each step the trainer's own `train_step` (collate included). Medians.

Model FLOPs = 6 × parameters used per token × tokens (forward 2 per multiply-add, backward 4):
encoder parameters per real source token; decoder parameters plus the output projection (V × D,
counted even when tied to the embedding) per real target token. Embedding lookups and the
attention score/value products (≈ 2 % at these sentence lengths) are not counted; padding is
work done but not counted. The peak is a 2048² square matmul measured in the same command with
the same threads (best of 5), fp32 and bf16; MFU divides by the peak of train.precision.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import torch
from torch.profiler import record_function

from mt import config as config_mod
from mt import corpora, data, memory
from mt.config import Config
from mt.errors import MTError
from mt.model import build_model, count_parameters
from mt.optim import make_optimizer, native_bf16_cpu, use_bf16
from mt.step import train_step
from mt.tools import profile


def load_config(model: str | None, config_file: str | None, sets: list[str], corpus: str | None) -> Config:
    """The config `mt train` would use: experiments/<model>.toml (or --config), then --corpus, --set."""
    return config_mod.load(model, config_file, sets, {"data.corpus": corpus})


def machine() -> dict:
    """CPU model, cores, torch version: what a figure was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident set size."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def matmul_peak(dtype: torch.dtype, n: int = 2048, tries: int = 5) -> float:
    """FLOP/s of the best of `tries` n×n @ n×n products (2n³ FLOPs each) after one warm-up."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def flops_per_token(model: torch.nn.Module) -> tuple[int, int]:
    """Training FLOPs per real (source, target) token: 6 × the parameters each token passes through."""
    enc = dec = 0
    for name, p in model.named_parameters():  # a tied output weight appears once, as the embedding
        if "embed" in name or name.startswith("output."):
            continue
        if name.startswith("encoder"):
            enc += p.numel()
        else:
            dec += p.numel()
    out = sum(p.numel() for p in model.output.parameters())  # the projection is a matmul even when tied
    return 6 * enc, 6 * (dec + out)


def _train_child(raw: dict, steps: int, warmup: int, repeats: int, threads: int, breakdown: bool) -> dict:
    """Build the run's data, model and optimiser; time `repeats` passes of `steps` steps (runs in a child)."""
    torch.set_num_threads(threads)
    cfg = config_mod.build(raw)
    memory.limit_kernel_cache(cfg.train.kernel_cache)
    corpus_dir, tokenized = corpora.resolve(cfg.data.corpus, exclude=cfg.data.exclude)
    cfg = replace(cfg, data=cfg.data.resolved(tokenized))
    prep = data.prepare(cfg.data, corpus_dir, lambda _msg: None)
    train = prep.split("train")
    batches = data.make_batches(train.src_lens, train.tgt_lens, cfg.train.batch_tokens, cfg.train.seed,
                                1, True, cfg.data.max_len)
    if not batches:
        raise MTError(f"no training batches in {cfg.data.corpus}")
    batches = batches * -(-(warmup + steps) // len(batches))  # a small corpus is cycled
    warm, timed = batches[:warmup], batches[warmup: warmup + steps]
    rss_start = rss_mb()
    torch.manual_seed(cfg.train.seed)
    dev = torch.device("cpu")
    model = build_model(cfg.model_type, cfg.model, len(prep.src_vocab), len(prep.tgt_vocab)).train()
    optimizer = make_optimizer(model, cfg.train)
    step_model = torch.compile(model, dynamic=True) if cfg.train.compile else model
    step = 0

    def run(indices: list) -> float:
        nonlocal step
        total = 0.0
        for idx in indices:
            step += 1
            with record_function("mt.data"):
                batch = data.collate(train, idx)
            total += train_step(step_model, optimizer, batch, cfg, step, 1, dev).loss.item() * batch.n_tokens
        return total

    start = time.perf_counter()
    run(warm)
    warm_seconds = time.perf_counter() - start
    rss_warm, heap_warm = rss_mb(), memory.heap_in_use_mb()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(timed)
        times.append(time.perf_counter() - start)
    peak, rss_end, heap_end = peak_rss_mb(), rss_mb(), memory.heap_in_use_mb()  # before the profiler's own memory
    where = profile.breakdown(lambda: run(timed), len(timed)) if breakdown else None
    src_lens, tgt_lens = train.src_lens, train.tgt_lens
    sizes = [(len(i), int(src_lens[i].max()) + 1, int(tgt_lens[i].max()) + 1) for i in timed]
    per_src, per_tgt = flops_per_token(model)
    return {"params": count_parameters(model), "flops_per_src_token": per_src, "flops_per_tgt_token": per_tgt,
            "vocab": [len(prep.src_vocab), len(prep.tgt_vocab)], "threads": torch.get_num_threads(),
            "precision": cfg.train.precision, "bf16": use_bf16(cfg.train.precision, dev),
            "batch_tokens": cfg.train.batch_tokens, "trim_memory_every": cfg.train.trim_memory_every,
            "micro_batches": cfg.train.micro_batches, "kernel_cache": os.environ.get(memory.KERNEL_CACHE_ENV, "1024"),
            "compile": cfg.train.compile, "warmup_seconds": warm_seconds,
            "steps": len(timed),
            "warmup": len(warm), "repeats": repeats, "seconds": times,
            "src_tokens": int(sum(int(src_lens[i].sum()) + len(i) for i in timed)),  # + EOS per source
            "tgt_tokens": int(sum(int(tgt_lens[i].sum()) + len(i) for i in timed)),  # + EOS per target
            "src_slots": sum(b * s for b, s, _ in sizes), "tgt_slots": sum(b * t for b, _, t in sizes),
            "rss_start_mb": rss_start, "rss_after_warmup_mb": rss_warm, "rss_end_mb": rss_end,
            "heap_in_use_after_warmup_mb": heap_warm, "heap_in_use_end_mb": heap_end,
            "peak_rss_mb": peak, "breakdown": where}


def bench_train(cfg: Config, steps: int = 20, warmup: int = 5, repeats: int = 3, threads: int = 0,
                isolate: bool = True, breakdown: bool = True) -> dict:
    """Measure training speed of `cfg` (see the module docstring); returns the JSON record."""
    if steps < 1 or repeats < 1 or warmup < 0:
        raise MTError("--steps and --repeats must be at least 1, --warmup at least 0")
    threads = threads or cfg.train.threads or torch.get_num_threads()
    args = (cfg.to_dict(), steps, warmup, repeats, threads, breakdown)
    if isolate:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            r = pool.submit(_train_child, *args).result()
    else:
        r = _train_child(*args)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    # an emulated bf16 (an AVX2-only CPU) is ~60× slower: a small product says so without minutes of waiting
    emulated = not native_bf16_cpu()
    peaks = {"fp32": matmul_peak(torch.float32),
             "bf16": matmul_peak(torch.bfloat16, *((512, 1) if emulated else ()))}
    torch.set_num_threads(old)
    seconds = statistics.median(r["seconds"])
    flops = r["flops_per_src_token"] * r["src_tokens"] + r["flops_per_tgt_token"] * r["tgt_tokens"]
    precision = "bf16" if r["bf16"] else "fp32"
    return {"bench": "train", "model": cfg.model_type, **machine(), **r,
            "median_seconds": seconds, "ms_per_step": 1000 * seconds / r["steps"],
            "tgt_tokens_per_s": r["tgt_tokens"] / seconds,
            "src_tgt_tokens_per_s": (r["src_tokens"] + r["tgt_tokens"]) / seconds,
            "model_flops_per_s": flops / seconds,
            "matmul_peak_fp32": peaks["fp32"], "matmul_peak_bf16": peaks["bf16"],
            "mfu": flops / seconds / peaks[precision], "mfu_of": precision,
            "pad_fraction_src": 1 - r["src_tokens"] / r["src_slots"],
            "pad_fraction_tgt": 1 - r["tgt_tokens"] / r["tgt_slots"],
            "pad_fraction": 1 - (r["src_tokens"] + r["tgt_tokens"]) / (r["src_slots"] + r["tgt_slots"])}


def format_train(r: dict) -> list[str]:
    """Readable lines for a `bench_train` record."""
    g = 1e9
    used = "bf16" if r["bf16"] else "fp32"
    precision = r["precision"] + (f" ({used})" if r["precision"] != used else "")
    return [
        f"{r['model']}: {r['params']:,} parameters, vocab {r['vocab'][0]}/{r['vocab'][1]}; "
        f"{precision}, {r['threads']} threads, batch_tokens {r['batch_tokens']}"
        + (f" in {r['micro_batches']} micro-batches" if r.get("micro_batches", 1) > 1 else "")
        + (" (torch.compile)" if r.get("compile") else "") + f"; {r['cpu']}, torch {r['torch']}",
        f"{r['steps']} steps × {r['repeats']} repeats after {r['warmup']} warm-up steps "
        f"({r.get('warmup_seconds', 0):.1f} s) "
        f"({r['src_tokens']:,} source + {r['tgt_tokens']:,} target tokens per repeat)",
        f"  target tokens/s          {r['tgt_tokens_per_s']:10,.0f}",
        f"  source+target tokens/s   {r['src_tgt_tokens_per_s']:10,.0f}",
        f"  ms/step                  {r['ms_per_step']:10.1f}   "
        f"(median; repeats took {', '.join(f'{s:.2f}' for s in r['seconds'])} s)",
        f"  model GFLOP/s            {r['model_flops_per_s'] / g:10.1f}   "
        f"(6 × {r['flops_per_src_token'] // 6:,} params/source token, {r['flops_per_tgt_token'] // 6:,}/target token)",
        f"  matmul peak GFLOP/s      {r['matmul_peak_fp32'] / g:10.1f} fp32, {r['matmul_peak_bf16'] / g:.1f} bf16",
        f"  MFU                      {100 * r['mfu']:9.1f}%   (of the {r['mfu_of']} peak)",
        f"  padding                  {100 * r['pad_fraction']:9.1f}%   "
        f"(pad / all slots; source {100 * r['pad_fraction_src']:.1f}%, target {100 * r['pad_fraction_tgt']:.1f}%)",
        f"  peak RSS                 {r['peak_rss_mb']:8.0f} MB   (training process; {r['rss_start_mb']:.0f} MB "
        f"before the model, {r['rss_after_warmup_mb']:.0f} after warm-up, {r['rss_end_mb']:.0f} at the end; "
        f"kernel cache {r.get('kernel_cache', '1024')} shapes"
        + (f"; malloc_trim every {r['trim_memory_every']} steps)" if r.get("trim_memory_every") else ")"),
    ] + ([f"  heap in use              {r['heap_in_use_end_mb']:8.0f} MB   (malloc'd and not freed after the last "
          f"step; {r['heap_in_use_after_warmup_mb']:.0f} MB after warm-up)"]
         if r.get("heap_in_use_end_mb") is not None else []) \
        + (profile.format_breakdown(r["breakdown"], "step") if r.get("breakdown") else [])


def aligned(cells: list[list[str]]) -> list[str]:
    """Rows of cells as text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in cells]


def write_json(record: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
