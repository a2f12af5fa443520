"""`mt bench translate`: decoding speed, quality and memory of one checkpoint on several engines.

Engines: torch (our fp32 model), torch-int8 (mt.tools.compress dynamic int8), ct2 and ct2-int8
(CTranslate2 float32 / int8 exports via mt.tools.export_ct2). Each engine runs in its own spawned
process (its peak RSS is its own; torch and CTranslate2 each bring a thread pool). Per engine and
beam: one warm-up, then `repeats` timed passes over the test set with sources already tokenized
and the model loaded (median: sentences/s, generated tokens/s, EOS excluded), test BLEU, and the
wall clock of the whole `mt translate` command on the same lines (start-up and loading included).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from mt import checkpoint as ckpt
from mt import metrics
from mt.corpora import read_lines
from mt.errors import MTError
from mt.evaluate import eval_set
from mt.tools import compress
from mt.tools.bench import machine, peak_rss_mb
from mt.tools.export_ct2 import CT2Translator, bench_ct2, export_ctranslate2
from mt.translate import Translator

ENGINES = ("torch", "torch-int8", "ct2", "ct2-int8")


def _bleu(outputs: list, refs: list[str], tokenized: bool) -> float:
    """Corpus-token BLEU on a tokenized corpus, else BLEU on Japanese text (ja-mecab or fallback)."""
    if tokenized:
        return metrics.corpus_token_bleu([o.tokens for o in outputs], refs)[0]
    return metrics.ja_bleu([o.text for o in outputs], refs)[0]


def _torch_child(path: Path, lines: list[str], refs: list[str], tokenized: bool, beams: list[int],
                 repeats: int, threads: int) -> dict:
    """Our Translator (fp32 or int8 checkpoint): speed and BLEU per beam, then peak RSS."""
    torch.set_num_threads(threads)
    tr = Translator.from_checkpoint(path)
    sources = [tr.source_ids(line)[0] for line in lines]
    out: dict = {}
    for beam in beams:
        tr.translate_ids(sources[:8], beam=beam)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            hyps = tr.translate_ids(sources, beam=beam)
            times.append(time.perf_counter() - start)
        tokens = sum(len(h[0].tokens) for h in hyps)
        out[beam] = {"seconds": times, "tokens": tokens,
                     "bleu": _bleu([tr.output(h[0]) for h in hyps], refs, tokenized)}
    return {"beams": out, "peak_rss_mb": peak_rss_mb()}


def _ct2_child(model_dir: Path, lines: list[str], refs: list[str], tokenized: bool, beams: list[int],
               repeats: int, threads: int) -> dict:
    """A CTranslate2 export: bench_ct2 per beam (timed as ours), BLEU from one more pass, peak RSS."""
    out: dict = {}
    for beam in beams:  # bench_ct2 loads its own translator and frees it on return
        speed = bench_ct2(model_dir, lines, beam, repeats, intra_threads=threads)
        seconds = len(lines) / speed["sentences_per_s"]
        out[beam] = {"seconds": [seconds], "tokens": round(speed["tokens_per_s"] * seconds)}
    tr = CT2Translator(model_dir, intra_threads=threads)
    for beam in beams:
        out[beam]["bleu"] = _bleu([o[0] for o in tr.translate(lines, beam=beam)], refs, tokenized)
    return {"beams": out, "peak_rss_mb": peak_rss_mb()}


def _command_seconds(args: list[str], src: Path, threads: int) -> float:
    """Wall clock of `mt translate ARGS < src` in a fresh interpreter (output discarded)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with open(src, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "mt", "translate", *args], stdin=stdin,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if done.returncode:
        raise MTError(f"mt translate {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return time.perf_counter() - start


def _prepare_engine(engine: str, checkpoint: Path, tmp: Path) -> tuple[Path | None, list[str], str]:
    """(model path, `mt translate` model arguments, note); path None = engine unavailable (note says why)."""
    if engine == "torch":
        return checkpoint, ["--checkpoint", str(checkpoint)], ""
    if engine == "torch-int8":
        tensors, meta = compress.quantize(checkpoint)
        path = tmp / "int8.safetensors"
        ckpt.save(path, tensors, meta)
        return path, ["--checkpoint", str(path)], ""
    try:
        out = export_ctranslate2(checkpoint, tmp / engine, "int8" if engine == "ct2-int8" else None)
    except MTError as e:
        return None, [], f"{engine} skipped: {e}"
    return out, ["--engine", "ctranslate2", "--ct2-dir", str(out)], ""


def bench_translate(checkpoint: Path, engines: list[str], repeats: int = 3, threads: int = 2,
                    beams: tuple[int, ...] = (1, 5), limit: int = 0, log=lambda _msg: None) -> dict:
    """Measure every engine on the checkpoint corpus's test split; returns the JSON record."""
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise MTError(f"unknown engine {unknown[0]!r}; valid: {', '.join(ENGINES)}")
    if repeats < 1:
        raise MTError("--repeats must be at least 1")
    test = eval_set(checkpoint)
    src, ref, tokenized = test.src, test.ref, test.ref_tokenized
    lines, refs = list(read_lines(src)), list(read_lines(ref))
    if limit:
        lines, refs = lines[:limit], refs[:limit]
    record = {"bench": "translate", "checkpoint": str(checkpoint), "test": str(src), "sentences": len(lines),
              "threads": threads, "repeats": repeats, **machine(), "rows": [], "notes": []}
    with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "src.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        for engine in engines:
            path, cmd_args, note = _prepare_engine(engine, checkpoint, tmp)
            if path is None:
                record["notes"].append(note)
                log(note)
                continue
            log(f"{engine}: measuring {len(lines)} sentences, beams {list(beams)}")
            child = _ct2_child if engine.startswith("ct2") else _torch_child
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                res = pool.submit(child, path, lines, refs, tokenized, list(beams), repeats, threads).result()
            for beam, m in res["beams"].items():
                seconds = statistics.median(m["seconds"])
                record["rows"].append({
                    "engine": engine, "beam": beam, "sentences_per_s": len(lines) / seconds,
                    "tokens_per_s": m["tokens"] / seconds, "seconds": seconds, "bleu": m["bleu"],
                    "peak_rss_mb": res["peak_rss_mb"],
                    "command_seconds": _command_seconds([*cmd_args, "--beam", str(beam)], tmp / "src.txt", threads)})
    record["bleu_kind"] = "corpus tokens" if tokenized else "ja (detokenized)"
    return record


COLUMNS = [("engine", "engine", "{}"), ("beam", "beam", "{}"), ("sentences_per_s", "sent/s", "{:.1f}"),
           ("tokens_per_s", "tok/s", "{:,.0f}"), ("bleu", "BLEU", "{:.2f}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
           ("command_seconds", "mt translate s", "{:.2f}")]


def format_translate(record: dict) -> list[str]:
    """The record as a table (header line first), then notes."""
    cells = [[head for _, head, _ in COLUMNS]]
    cells += [[fmt.format(r[key]) for key, _, fmt in COLUMNS] for r in record["rows"]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = [f"{record['checkpoint']} on {record['test']} ({record['sentences']} sentences), "
             f"{record['threads']} threads, median of {record['repeats']}; {record['cpu']}, torch {record['torch']}"]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
              for row in cells]
    lines.append(f"BLEU on {record.get('bleu_kind', '?')}; sent/s and tok/s: search only (model loaded, sources "
                 f"tokenized); mt translate s: the whole command, one run")
    return lines + [f"note: {n}" for n in record["notes"]]
