"""`mt bench translate --overhead`: what sentence splitting, clause splitting, the reference-free checks, the
dictionary and numbers from the source, and the model's `dropped` check add to the wall clock of `mt translate`,
side by side.

Each variant is the whole `mt translate` command (a fresh interpreter, the torch engine, model loading included)
on the same test lines at the same beam. The variants run interleaved, one of each per round, `repeats` rounds,
so the machine's noise falls on all of them alike; medians are compared with the `--no-split` baseline (each
line translated whole, as before sentence splitting). `mt translate` on an empty input, timed in the same rounds,
is start-up and model loading: subtracted from each median it leaves the translation itself (a variant's own
set-up, such as the checks' statistics or the dictionary, stays in its figure).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mt import checkpoint as ckpt
from mt import config, lexicon
from mt.errors import MTError
from mt.sentences import split_sentences
from mt.tools.bench import aligned, machine
from mt.tools.bench_translate import bench_lines, command_seconds, systems

PLAIN = ("--dictionary", "none", "--numbers", "model", "--clauses", "0")  # whatever the run's decode config says: off
CLAUSES = ("--clauses", "6")  # experiments/everyday.toml's: long compound sentences clause by clause


@dataclass(frozen=True)
class Variant:
    """One timed `mt translate` command: its name and the arguments that make it differ."""

    name: str
    args: tuple[str, ...]
    empty: bool = False  # on an empty input: start-up and model loading only


LOAD = Variant("load (empty input)", PLAIN, empty=True)


def variants(dictionary: bool = True) -> list[Variant]:
    """The measured variants in order, the --no-split baseline first; `dictionary`: JMdict can load here."""
    out = [Variant("no-split", ("--no-split", *PLAIN)), Variant("split", PLAIN),
           Variant("split + check", ("--check", *PLAIN)),
           Variant("split + clauses + check", ("--check", *PLAIN, *CLAUSES))]
    if dictionary:
        out.append(Variant("split + clauses + check + dictionary + numbers",
                           ("--check", *CLAUSES, "--dictionary", "jmdict", "--numbers", "source")))
    out.append(Variant("split + check + dropped", ("--check", "--dropped", *PLAIN)))
    return out


def jmdict_missing() -> str | None:
    """Why `--dictionary jmdict` cannot run here (lexicon's own message), None when it can."""
    try:
        lexicon.load("jmdict")
    except MTError as e:
        return str(e)
    return None


def interleaved(commands: list[Variant], repeats: int, seconds: Callable[[Variant], float]) -> list[list[float]]:
    """`repeats` rounds of every command in order (A, B, C, A, B, C, …): each command's times."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeats):
        for i, command in enumerate(commands):
            times[i].append(seconds(command))
    return times


def _ratio(value: float, base: float) -> float | None:
    """value / base − 1 (+0.031 = 3.1 % slower), None where the base is no time at all."""
    return value / base - 1 if base > 0 else None


def rows(measured: list[Variant], times: list[list[float]], load: float | None, sentences: int) -> list[dict]:
    """Per variant: median seconds, sentences/s, ratios to the first (baseline) variant, with and without load."""
    medians = [statistics.median(t) for t in times]
    out = []
    for v, t, median in zip(measured, times, medians, strict=True):
        row = {"variant": v.name, "args": list(v.args), "runs": t, "seconds": median,
               "sentences_per_s": sentences / median, "vs_no_split": _ratio(median, medians[0])}
        if load is not None:
            row["minus_load_seconds"] = median - load
            row["minus_load_vs_no_split"] = _ratio(median - load, medians[0] - load)
        out.append(row)
    return out


def bench_overhead(paths: list[Path], repeats: int = 3, threads: int = 2, beam: int | None = None, limit: int = 0,
                   corpus: str | None = None, log=lambda _msg: None, weights: list[float] | None = None,
                   alpha: float | None = None, combine: str = "prob") -> dict:
    """Time the variants' `mt translate` (the ensemble, given several checkpoints) interleaved on the test lines;
    returns the JSON record."""
    if repeats < 1:
        raise MTError("--repeats must be at least 1")
    system = systems(paths, weights, alpha, combine)[-1]
    test, lines, _ = bench_lines(paths[0], corpus, limit)
    beam = beam or config.build(ckpt.read_meta(paths[0])["config"]).decode.beam
    missing = jmdict_missing()
    notes = [f"dictionary variant skipped: {missing}"] if missing else []
    measured = variants(dictionary=missing is None)
    record = {"bench": "translate-overhead", "checkpoint": " + ".join(map(str, paths)), "test": str(test.src),
              "sentences": len(lines), "split_sentences": sum(len(split_sentences(line)) for line in lines),
              "beam": beam, "threads": threads, "repeats": repeats, **machine(), "notes": notes}
    with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp_name:
        src, empty = Path(tmp_name) / "src.txt", Path(tmp_name) / "empty.txt"
        src.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        empty.write_text("", encoding="utf-8")

        def seconds(v: Variant) -> float:
            args = [*system.command_args(), "--beam", str(beam), *v.args]
            return command_seconds(args, empty if v.empty else src, threads)

        log(f"{system.name}: {len(measured)} variants + load, {repeats} interleaved rounds, {len(lines)} lines, "
            f"beam {beam}")
        seconds(LOAD)  # untimed warm-up: the first interpreter pays for a cold file cache
        times = interleaved([*measured, LOAD], repeats, seconds)
    record["load_seconds"] = statistics.median(times[-1])
    record["rows"] = rows(measured, times[:-1], record["load_seconds"], len(lines))
    return record


def _percent(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:+.1f} %"


COLUMNS = [("variant", "variant", str), ("seconds", "mt translate s", "{:.2f}".format),
           ("sentences_per_s", "sent/s", "{:.1f}".format), ("vs_no_split", "vs no-split", _percent),
           ("minus_load_seconds", "s − load", "{:.2f}".format), ("minus_load_vs_no_split", "vs no-split − load",
                                                                 _percent)]


def format_overhead(record: dict) -> list[str]:
    """The record as a table (header line first), then how to read it and the notes."""
    cells = [[head for _, head, _ in COLUMNS]]
    cells += [[fmt(r[key]) for key, _, fmt in COLUMNS] for r in record["rows"]]
    lines = [f"{record['checkpoint']} on {record['test']} ({record['sentences']} lines, {record['split_sentences']} "
             f"sentences once split), beam {record['beam']}, {record['threads']} threads, median of "
             f"{record['repeats']} interleaved rounds; {record['cpu']}, torch {record['torch']}"]
    lines += aligned(cells)
    lines.append(f"mt translate s: the whole command (start-up and model loading included); sent/s: input lines "
                 f"per second of it; load: mt translate on an empty input, {record['load_seconds']:.2f} s, "
                 f"subtracted from each median (a variant's own set-up stays in)")
    return lines + [f"note: {n}" for n in record["notes"]]
