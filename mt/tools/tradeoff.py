"""`mt compress-report`: size, quality and speed of several checkpoints side by side.

Each checkpoint is measured in a fresh process (spawned), so its peak RSS is its own: parameters,
file size (and the bytes of its model tensors, without optimizer state), test BLEU on corpus tokens
and ja-mecab, chrF (beam from the checkpoint's decode config), and sentences/s for greedy and
beam 5 (median of `repeats` timed passes over the first `speed_lines` test sentences).
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch
from safetensors import safe_open

from mt import checkpoint as ckpt
from mt import corpora
from mt.checkpoint import load
from mt.errors import MTError
from mt.evaluate import evaluate
from mt.model import count_parameters
from mt.tools.compress import resolve_source
from mt.translate import Translator

COLUMNS = [("label", "model", "{}"), ("params", "params", "{:,}"), ("sparsity", "sparsity", "{:.2f}"),
           ("file_mb", "file MB", "{:.2f}"), ("model_mb", "weights MB", "{:.2f}"),
           ("bleu_tok", "BLEU", "{:.2f}"), ("bleu_ja", "BLEU(ja)", "{:.2f}"), ("chrf", "chrF", "{:.2f}"),
           ("sent_per_s_greedy", "sent/s greedy", "{:.1f}"), ("sent_per_s_beam5", "sent/s beam5", "{:.1f}"),
           ("peak_rss_mb", "peak RSS MB", "{:.0f}")]


def parse_row(text: str) -> tuple[str, Path]:
    """'LABEL=PATH', a checkpoint path or a run name → (label, checkpoint path)."""
    label, sep, target = text.partition("=")
    path = resolve_source(target if sep else text)
    return (label if sep else f"{path.parent.name}/{path.stem}"), path


def _model_bytes(path: Path) -> int:
    """Bytes of the model.* tensors in a checkpoint file (read from the header, nothing loaded)."""
    total = 0
    with safe_open(path, framework="pt") as f:
        for key in f.keys():
            if key.startswith("model."):
                piece = f.get_slice(key)
                n = 1
                for d in piece.get_shape():
                    n *= d
                total += n * {"F32": 4, "F16": 2, "BF16": 2, "I8": 1, "U8": 1, "I32": 4, "I64": 8}[piece.get_dtype()]
    return total


def measure(label: str, path: Path, src: Path, ref: Path, ref_tokenized: bool, speed_lines: int,
            repeats: int, threads: int) -> dict:
    """One row, measured in the calling process."""
    if threads:
        torch.set_num_threads(threads)
    translator = Translator.from_checkpoint(path)
    meta = load(path)[1]
    with tempfile.TemporaryDirectory() as tmp:
        scores = evaluate(translator, src, ref, ref_tokenized, Path(tmp), "report")
    lines = list(corpora.read_lines(src))[:speed_lines]
    row = {"label": label, "checkpoint": str(path), "params": _params(meta),
           "sparsity": meta.get("pruned", {}).get("sparsity", 0.0), "quantized": bool(meta.get("quantized")),
           "file_mb": path.stat().st_size / 1e6, "model_mb": _model_bytes(path) / 1e6,
           **{k: v for k, v in scores.items() if k in ("beam", "bleu_tok", "bleu_ja", "chrf")},
           "bleu_tok_signature": scores.get("bleu_tok_signature"), "bleu_ja_signature": scores["bleu_ja_signature"],
           "speed_lines": len(lines), "threads": torch.get_num_threads()}
    for name, beam in (("greedy", 1), ("beam5", 5)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            translator.translate(lines, beam=beam)
            times.append(time.perf_counter() - t0)
        row[f"sent_per_s_{name}"] = len(lines) / statistics.median(times)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return row


def _params(meta: dict) -> int:
    """Parameters of the architecture (a quantized model counts its float original)."""
    return count_parameters(ckpt.model_from_meta(meta)[0])


def compression_report(rows: list[tuple[str, Path]], src_file: Path, ref_file: Path, ref_tokenized: bool,
                       speed_lines: int = 500, repeats: int = 3, threads: int = 1,
                       isolate: bool = True) -> list[dict]:
    """Measure every (label, checkpoint) row; `isolate` runs each in its own process (own peak RSS)."""
    for path in [src_file, ref_file, *(p for _, p in rows)]:
        if not Path(path).is_file():
            raise MTError(f"file not found: {path}")
    out = []
    for label, path in rows:
        args = (label, Path(path), Path(src_file), Path(ref_file), ref_tokenized, speed_lines, repeats, threads)
        if not isolate:
            out.append(measure(*args))
            continue
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            out.append(pool.submit(measure, *args).result())
    return out


def format_report(rows: list[dict]) -> list[str]:
    """A header line, then one line per row."""
    cells = [[head for _, head, _ in COLUMNS]]
    for r in rows:
        cells.append([fmt.format(r[key]) if r.get(key) is not None else "-" for key, _, fmt in COLUMNS])
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    return ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in cells]


def write_json(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
