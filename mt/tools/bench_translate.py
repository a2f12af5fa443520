"""`mt bench translate`: decoding speed, quality and memory of one checkpoint on several engines, or
of an ensemble beside each of its members.

Engines: torch (our fp32 model), torch-bf16 (its weights in bf16, decode.precision; only on a CPU with native
bf16 or a GPU), torch-int8 (mt.tools.compress dynamic int8), ct2 and ct2-int8 (CTranslate2 float32 / int8
exports via mt.tools.export_ct2). Each is measured at the model's own decoding batch (decode.batch_size) or at
each of the batch sizes asked for. Each engine runs in its own spawned
process (its peak RSS is its own; torch and CTranslate2 each bring a thread pool). Per engine and
beam: one warm-up pass over the test set that is also scored (test BLEU, mt.evaluate.decode_and_score),
then `repeats` timed passes with sources already tokenized and the model loaded (median: sentences/s,
generated tokens/s, EOS excluded), and the wall clock of the whole `mt translate` command on the same
lines (start-up and loading included). Torch engines end with where the time goes (mt/tools/profile.py):
one extra profiled pass per beam, after the timed ones, in ms per sentence.
Given several checkpoints, each member alone and then their ensemble (mt/ensemble.py) are measured
with the torch engine in one sitting, so the ensemble's cost is read against its members'.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import product
from multiprocessing import get_context
from pathlib import Path

import torch

from mt import checkpoint as ckpt
from mt.corpora import read_lines
from mt.errors import MTError
from mt.evaluate import EvalSet, Pairs, decode_and_score, eval_set
from mt.optim import native_bf16_cpu
from mt.shortlist import FILE as SHORTLIST_FILE
from mt.tools import compress, profile
from mt.tools.bench import aligned, machine, peak_rss_mb
from mt.tools.export_ct2 import CT2Translator, bench_ct2, export_ctranslate2
from mt.translate import Translator

ENGINES = ("torch", "torch-bf16", "torch-int8", "ct2", "ct2-int8")


@dataclass(frozen=True)
class System:
    """What one row decodes with: a checkpoint, or an ensemble of several (weights and α of the ensemble)."""

    name: str
    paths: tuple[Path, ...]
    weights: tuple[float, ...] | None = None
    alpha: float | None = None
    combine: str = "prob"
    precision: str | None = None  # decode.precision (None: the checkpoint's)

    def translator(self) -> Translator:
        return Translator.from_checkpoints(list(self.paths), alpha=self.alpha, weights=list(self.weights or []) or None,
                                           combine=self.combine, precision=self.precision)

    def command_args(self) -> list[str]:
        """The model arguments of `mt translate` for this system."""
        args = [a for p in self.paths for a in ("--checkpoint", str(p))]
        if self.weights:
            args += ["--weights", ",".join(f"{w:g}" for w in self.weights)]
        if len(self.paths) > 1:
            args += ["--combine", self.combine]
        args += ["--precision", self.precision] if self.precision else []
        return args + (["--alpha", f"{self.alpha:g}"] if self.alpha is not None else [])


def systems(paths: list[Path], weights: list[float] | None = None, alpha: float | None = None,
            combine: str = "prob") -> list[System]:
    """One checkpoint: itself. Several: each member alone (its own α), then the ensemble."""
    name = lambda p: f"{p.parent.name}/{p.stem}"  # noqa: E731
    if weights and len(weights) != len(paths):
        raise MTError(f"--weights: {len(weights)} weights for {len(paths)} model{'s' if len(paths) > 1 else ''}")
    if len(paths) == 1:
        return [System(name(paths[0]), (paths[0],), alpha=alpha)]
    ensemble = System(f"ensemble of {len(paths)}", tuple(paths), tuple(weights) if weights else None, alpha, combine)
    return [System(name(p), (p,)) for p in paths] + [ensemble]


def _torch_child(system: System, lines: list[str], refs: list[str], tokenized: bool, beams: list[int],
                 repeats: int, threads: int, batch_size: int | None, patience: float | None = None,
                 shortlist: tuple[int, int] | None = None) -> dict:
    """Our Translator (fp32, bf16 or int8 checkpoint, or an ensemble): speed, BLEU and hypothesis-steps per beam,
    then peak RSS."""
    torch.set_num_threads(threads)
    tr = system.translator()
    if batch_size:
        tr.decode = replace(tr.decode, batch_size=batch_size)
    if patience is not None:
        tr.decode = replace(tr.decode, patience=patience)
    if shortlist is not None:
        tr.decode = replace(tr.decode, shortlist=shortlist)
    sources = [tr.source_ids(line)[0] for line in lines]
    out: dict = {}
    for beam in beams:
        with _counted_steps(tr.model) as rows:  # also the warm-up
            bleu = decode_and_score(tr, Pairs(sources, refs, tokenized), beam, every=False).bleu
        out[beam] = {"hyp_steps": rows[0] / max(1, len(sources))}
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            hyps = tr.translate_ids(sources, beam=beam)
            times.append(time.perf_counter() - start)
        out[beam].update({"seconds": times, "tokens": sum(len(h[0].tokens) for h in hyps), "bleu": bleu})
    peak = peak_rss_mb()  # before the profiler's own memory
    for beam in beams:  # one extra profiled pass per beam, after the timed ones
        out[beam]["breakdown"] = profile.breakdown(lambda b=beam: tr.translate_ids(sources, beam=b), len(sources))
    return {"beams": out, "peak_rss_mb": peak, "batch_size": tr.decode.batch_size, "patience": tr.decode.patience,
            "shortlist": list(tr.decode.shortlist)}


@contextmanager
def _counted_steps(model):
    """Count the hypotheses the decoder advances, step by step (rows of every decode_step), while inside."""
    rows = [0]
    step = model.decode_step

    def counted(prev, state):
        rows[0] += prev.size(0)
        return step(prev, state)

    model.decode_step = counted  # an instance attribute shadows the method until deleted
    try:
        yield rows
    finally:
        del model.decode_step


def _ct2_child(model_dir: Path, lines: list[str], refs: list[str], tokenized: bool, beams: list[int],
               repeats: int, threads: int, batch_size: int | None) -> dict:
    """A CTranslate2 export: bench_ct2 per beam (timed as ours), BLEU from one more pass, peak RSS."""
    out: dict = {}
    for beam in beams:  # bench_ct2 loads its own translator and frees it on return
        speed = bench_ct2(model_dir, lines, beam, repeats, intra_threads=threads, batch_size=batch_size)
        seconds = len(lines) / speed["sentences_per_s"]
        out[beam] = {"seconds": [seconds], "tokens": round(speed["tokens_per_s"] * seconds)}
    tr = CT2Translator(model_dir, intra_threads=threads)
    if batch_size:
        tr.decode = replace(tr.decode, batch_size=batch_size)
    for beam in beams:
        out[beam]["bleu"] = decode_and_score(tr, Pairs(lines, refs, tokenized), beam, every=False).bleu
    return {"beams": out, "peak_rss_mb": peak_rss_mb(), "batch_size": tr.decode.batch_size}


def command_seconds(args: list[str], src: Path, threads: int) -> float:
    """Wall clock of `mt translate ARGS < src` in a fresh interpreter (output discarded)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with open(src, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "mt", "translate", *args], stdin=stdin,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if done.returncode:
        raise MTError(f"mt translate {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return time.perf_counter() - start


def _prepare_engine(engine: str, system: System, tmp: Path) -> tuple[System | Path | None, list[str], str]:
    """(what the engine's child loads: a System for torch engines, an export folder for ct2; `mt translate` model
    arguments; note); None = engine unavailable (note says why)."""
    if engine == "torch":
        return system, system.command_args(), ""
    if engine == "torch-bf16":
        if not native_bf16_cpu() and not torch.cuda.is_available():
            return None, [], f"torch-bf16 skipped: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16"
        bf16 = replace(system, precision="bf16")
        return bf16, bf16.command_args(), ""
    checkpoint = system.paths[0]
    if engine == "torch-int8":
        tensors, meta = compress.quantize(checkpoint)
        path = tmp / "int8.safetensors"
        ckpt.save(path, tensors, meta)
        if (checkpoint.parent / SHORTLIST_FILE).is_file():  # the run's shortlist, beside the int8 copy
            shutil.copyfile(checkpoint.parent / SHORTLIST_FILE, tmp / SHORTLIST_FILE)
        int8 = replace(system, paths=(path,))
        return int8, int8.command_args(), ""
    try:
        out = export_ctranslate2(checkpoint, tmp / engine, "int8" if engine == "ct2-int8" else None)
    except MTError as e:
        return None, [], f"{engine} skipped: {e}"
    return out, ["--engine", "ctranslate2", "--ct2-dir", str(out)], ""


def bench_lines(checkpoint: Path, corpus: str | None = None, limit: int = 0) -> tuple[EvalSet, list[str], list[str]]:
    """The test split of `corpus` (else of the checkpoint's own corpus, as `mt evaluate --corpus` finds it): the
    set, its first `limit` source lines (0: all) and their references."""
    test = eval_set(checkpoint, corpus=corpus)
    lines, refs = list(read_lines(test.src)), list(read_lines(test.ref))
    return (test, lines[:limit], refs[:limit]) if limit else (test, lines, refs)


def bench_translate(paths: list[Path], engines: list[str], repeats: int = 3, threads: int = 2,
                    beams: tuple[int, ...] = (1, 5), limit: int = 0, log=lambda _msg: None,
                    weights: list[float] | None = None, alpha: float | None = None, combine: str = "prob",
                    corpus: str | None = None, batch_sizes: tuple[int, ...] = (),
                    patiences: tuple[float, ...] = (), shortlists: tuple[tuple[int, int], ...] = ()) -> dict:
    """Measure every engine on the test split of `corpus`, else of the first checkpoint's corpus (an ensemble:
    each member, then the ensemble, with the torch engine), at each of `batch_sizes` (none: the model's
    decode.batch_size) and, for the torch engines, each of `patiences` (none: the model's decode.patience) and
    `shortlists` (none: the model's decode.shortlist); returns the JSON record."""
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise MTError(f"unknown engine {unknown[0]!r}; valid: {', '.join(ENGINES)}")
    if repeats < 1:
        raise MTError("--repeats must be at least 1")
    if any(b < 1 for b in batch_sizes):
        raise MTError("--batch-size must be at least 1")
    measured = systems(paths, weights, alpha, combine)
    notes = []
    others = [e for e in engines if e not in ("torch", "torch-bf16")]  # engines that decode one model, not an ensemble
    if len(paths) > 1 and others:
        notes.append(f"an ensemble and its members are measured with the torch engines only (not {', '.join(others)})")
        engines = [e for e in engines if e not in others] or ["torch"]
    test, lines, refs = bench_lines(paths[0], corpus, limit)
    src, tokenized = test.src, test.ref_tokenized
    record = {"bench": "translate", "checkpoint": " + ".join(map(str, paths)), "test": str(src), "sentences": len(lines),
              "threads": threads, "repeats": repeats, **machine(), "rows": [], "notes": notes}
    with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "src.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        for system, engine in ((s, e) for s in measured for e in engines):
            model, cmd_args, note = _prepare_engine(engine, system, tmp)
            if model is None:
                record["notes"].append(note)
                log(note)
                continue
            child = _ct2_child if engine.startswith("ct2") else _torch_child
            torch_engine = child is _torch_child
            for batch_size, patience, short in product(batch_sizes or (None,),
                                                       patiences if torch_engine and patiences else (None,),
                                                       shortlists if torch_engine and shortlists else (None,)):
                log(f"{system.name}, {engine}: measuring {len(lines)} sentences, beams {list(beams)}"
                    + (f", batches of {batch_size}" if batch_size else "")
                    + (f", patience {patience:g}" if patience is not None else "")
                    + (f", shortlist {short[0]},{short[1]}" if short is not None else ""))
                extra = (patience, short) if torch_engine else ()
                with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                    res = pool.submit(child, model, lines, refs, tokenized, list(beams), repeats, threads,
                                      batch_size, *extra).result()
                run_args = ["--batch-size", str(res["batch_size"])]
                run_args += ["--patience", f"{res['patience']:g}", "--shortlist", _pair(res["shortlist"])] \
                    if torch_engine else []
                for beam, m in res["beams"].items():
                    seconds = statistics.median(m["seconds"])
                    record["rows"].append({
                        "system": system.name, "engine": engine, "batch": res["batch_size"], "beam": beam,
                        **({"patience": res["patience"], "shortlist": _pair(res["shortlist"]), "hyp_steps": m["hyp_steps"]}
                           if torch_engine else {}),
                        "sentences_per_s": len(lines) / seconds, "tokens_per_s": m["tokens"] / seconds,
                        "seconds": seconds, "bleu": m["bleu"], "peak_rss_mb": res["peak_rss_mb"],
                        "breakdown": m.get("breakdown"),
                        "command_seconds": command_seconds([*cmd_args, *run_args, "--beam", str(beam)],
                                                           tmp / "src.txt", threads)})
    record["bleu_kind"] = "corpus tokens" if tokenized else "ja (detokenized)"
    return record


def _pair(shortlist: list[int]) -> str:
    """decode.shortlist as --shortlist takes it: FIRST,BEST."""
    return f"{shortlist[0]},{shortlist[1]}"


COLUMNS = [("system", "system", "{}"), ("engine", "engine", "{}"), ("batch", "batch", "{}"), ("beam", "beam", "{}"),
           ("patience", "patience", "{:g}"), ("shortlist", "shortlist", "{}"), ("hyp_steps", "hyp-steps/sent", "{:.1f}"),
           ("sentences_per_s", "sent/s", "{:.1f}"),
           ("tokens_per_s", "tok/s", "{:,.0f}"), ("bleu", "BLEU", "{:.2f}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
           ("command_seconds", "mt translate s", "{:.2f}")]


def format_translate(record: dict) -> list[str]:
    """The record as a table (header line first), then notes."""
    cells = [[head for _, head, _ in COLUMNS]]
    cells += [[fmt.format(r[key]) if key in r else "–" for key, _, fmt in COLUMNS] for r in record["rows"]]
    lines = [f"{record['checkpoint']} on {record['test']} ({record['sentences']} sentences), "
             f"{record['threads']} threads, median of {record['repeats']}; {record['cpu']}, torch {record['torch']}"]
    lines += aligned(cells)
    lines.append(f"BLEU on {record.get('bleu_kind', '?')}; sent/s and tok/s: search only (model loaded, sources "
                 f"tokenized); hyp-steps/sent: hypotheses the decoder advanced, summed over steps, per sentence; mt translate "
                 f"s: the whole command, one run")
    for r in record["rows"]:
        if r.get("breakdown"):
            patience = f", patience {r['patience']:g}, shortlist {r['shortlist']}" if "patience" in r else ""
            lines.append(f"{r['system']}, {r['engine']}, batch {r.get('batch', '?')}{patience}, beam {r['beam']}:")
            lines += profile.format_breakdown(r["breakdown"], "sentence")
    return lines + [f"note: {n}" for n in record["notes"]]
