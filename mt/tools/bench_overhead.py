"""`mt bench translate --overhead`: what sentence splitting, the checks, the dictionary and number rewriting
add to the wall clock of `mt translate`.

Each variant is the same `mt translate` command on the same lines with one more feature on; the variants run
in turn, round after round (`repeats` rounds), so the machine's noise falls on all of them alike. Medians are
compared with the first variant, `--no-split` (each line translated whole, as before sentence splitting). A
run on empty input measures start-up and model loading, reported beside, so the cost can also be read
against decoding time alone.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from mt.errors import MTError
from mt.lexicon import load as load_dictionary
from mt.tools.bench import machine
from mt.tools.bench_translate import _command_seconds

VARIANTS = (("no split", ["--no-split"]), ("split (default)", []), ("split + --check", ["--check"]),
            ("split + --check + jmdict + numbers", ["--check", "--dictionary", "jmdict", "--numbers", "source"]))


def _has_jmdict() -> bool:
    try:
        return load_dictionary("jmdict") is not None
    except MTError:
        return False


def bench_overhead(checkpoint: Path, lines: list[str], test: str, beam: int, repeats: int = 3, threads: int = 2,
                   log=lambda _msg: None) -> dict:
    """Median wall clock of each variant of `mt translate --checkpoint C --beam B < lines`, and of loading alone."""
    if repeats < 1:
        raise MTError("--repeats must be at least 1")
    variants = [v for v in VARIANTS if "jmdict" not in v[1] or _has_jmdict()]
    notes = [] if len(variants) == len(VARIANTS) else ["the jmdict variant is left out: needs mt-enja[dict]"]
    base = ["--checkpoint", str(checkpoint), "--beam", str(beam)]
    seconds: dict[str, list[float]] = {name: [] for name, _ in [("loading (empty input)", []), *variants]}
    with tempfile.TemporaryDirectory(prefix="mt-overhead-") as tmp_name:
        src, empty = Path(tmp_name) / "src.txt", Path(tmp_name) / "empty.txt"
        src.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        empty.write_text("", encoding="utf-8")
        for r in range(repeats):
            log(f"round {r + 1} of {repeats}")
            seconds["loading (empty input)"].append(_command_seconds(base, empty, threads))
            for name, extra in variants:
                seconds[name].append(_command_seconds([*base, *extra], src, threads))
    load = statistics.median(seconds["loading (empty input)"])
    first = statistics.median(seconds[variants[0][0]])
    rows = []
    for name, extra in variants:
        median = statistics.median(seconds[name])
        rows.append({"variant": name, "args": extra, "seconds": median, "runs": seconds[name],
                     "sentences_per_s": len(lines) / median, "vs_no_split": median / first - 1,
                     "vs_no_split_without_loading": (median - load) / (first - load) - 1 if first > load else None})
    return {"bench": "translate-overhead", "checkpoint": str(checkpoint), "test": test, "sentences": len(lines),
            "beam": beam, "threads": threads, "repeats": repeats, "loading_seconds": load, **machine(),
            "rows": rows, "notes": notes}


def format_overhead(record: dict) -> list[str]:
    """The record as a table: variant, median seconds, sentences/s, and the change against --no-split."""
    lines = [f"mt translate --checkpoint {record['checkpoint']} --beam {record['beam']} < {record['test']} "
             f"({record['sentences']} lines), {record['threads']} threads, median of {record['repeats']} interleaved "
             f"rounds; {record['cpu']}, torch {record['torch']}",
             f"{'variant':36} {'seconds':>8} {'lines/s':>8} {'vs no split':>12} {'without loading':>16}"]
    for r in record["rows"]:
        bare = r["vs_no_split_without_loading"]
        lines.append(f"{r['variant']:36} {r['seconds']:8.2f} {r['sentences_per_s']:8.1f} {r['vs_no_split']:+11.1%} "
                     f"{'' if bare is None else f'{bare:+.1%}':>16}")
    lines.append(f"loading alone (mt translate on empty input): {record['loading_seconds']:.2f} s")
    return lines + [f"note: {n}" for n in record["notes"]]
