"""`mt compare`: systems side by side with bootstrap intervals, paired significance and guards.

A system is a run's hypotheses for a split (written by `mt evaluate`) or a hypothesis file. Every score
is recomputed here from the hypotheses, by one metric object per score, so all systems share one
signature; segment statistics are extracted once per system and score (mt/significance.py).
Comparisons that would mislead are refused with one line (--force prints it as a warning): different
references, line counts or splits, runs scored under different signatures, tokenized text where
detokenized is expected or the reverse.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

from mt import check_model, checks, corpora, experiments, metrics, resumes, significance
from mt.errors import MTError

# Google's AutoML Translation guide, as the course quotes it: what a BLEU score means to a reader
BANDS = [(10, "almost useless"), (20, "hard to get the gist"), (30, "the gist is clear, with significant grammatical errors"),
         (40, "understandable to good"), (50, "high quality"), (60, "very high quality, adequate and fluent"),
         (float("inf"), "often better than human")]
SCORES = {"bleu_tok": "BLEU (corpus tokens)", "bleu_ja": "BLEU (ja-mecab)", "chrf": "chrF"}


def band(bleu: float) -> str:
    """The plain-language reading of a BLEU score (Google's AutoML guide)."""
    return next(text for limit, text in BANDS if bleu < limit)


@dataclass
class System:
    """One system's outputs on one test set."""

    name: str
    hyps: list[str]  # detokenized Japanese
    refs: list[str]  # detokenized references
    split: str
    hyps_tok: list[str] | None = None  # corpus tokens (when the references are tokenized)
    refs_tok: list[str] | None = None
    signatures: dict[str, str] = field(default_factory=dict)  # as its run was scored (runs only)
    run: Path | None = None
    src: Path | None = None  # the source side, for the checks (issue 30)

    @property
    def ref_hash(self) -> str:
        return hashlib.sha256("\n".join(self.refs_tok or self.refs).encode()).hexdigest()


def run_system(run: Path, split: str, evaluate: Callable[[Path], None] | None = None) -> System:
    """A run's hypotheses for `split`; `evaluate(run)` makes them when missing, else the error says how."""
    ev = run / f"eval-{split}.json"
    if not ev.exists() and evaluate:
        evaluate(run)
    if not ev.exists():
        raise MTError(f"run {run.name} has no {split} hypotheses yet: run `mt evaluate --run {run.name} --split {split}` "
                      f"(or add --evaluate)")
    info = json.loads(ev.read_text(encoding="utf-8"))
    lines = lambda name: list(corpora.read_lines(run / name))  # noqa: E731
    refs = list(corpora.read_lines(Path(info["ref"])))
    signatures = {k: info[f"{k}_signature"] for k in SCORES if f"{k}_signature" in info}
    src = Path(info["src"]) if "src" in info else None
    if (run / f"hyps-{split}.tok.txt").exists():
        return System(run.name, lines(f"hyps-{split}.txt"), metrics.detokenized(refs, True), split,
                      lines(f"hyps-{split}.tok.txt"), refs, signatures, run, src)
    return System(run.name, lines(f"hyps-{split}.txt"), refs, split, signatures=signatures, run=run, src=src)


def file_systems(ref: Path, hyps: list[Path], ref_tokenized: bool) -> list[System]:
    """Hypothesis files against one reference file (like sacrebleu -i); tokenized refs want tokenized hyps."""
    refs = list(corpora.read_lines(ref))
    out = []
    for path in hyps:
        lines = list(corpora.read_lines(path))
        if ref_tokenized:
            out.append(System(path.name, metrics.detokenized(lines, True), metrics.detokenized(refs, True), ref.name,
                              lines, refs))
        else:
            out.append(System(path.name, lines, refs, ref.name))
    return out


_SPACED_JA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff] [\u3040-\u30ff\u4e00-\u9fff]")


def looks_tokenized(lines: list[str]) -> bool:
    """Japanese with spaces between words (corpus tokens), as opposed to running text."""
    return sum(bool(_SPACED_JA.search(x)) for x in lines) > len(lines) / 2


def check(systems: list[System], force: bool, warn: Callable[[str], None]) -> None:
    """The guards: refuse (or, with force, warn about) comparisons that would mislead."""
    base = systems[0]
    problems = []
    for s in systems:
        if len(s.hyps) != len(s.refs):
            problems.append(f"{s.name} has {len(s.hyps)} lines but its references have {len(s.refs)}")
        if s is base:
            continue
        if s.split != base.split:
            problems.append(f"{base.name} is scored on {base.split}, {s.name} on {s.split}")
        elif s.ref_hash != base.ref_hash:
            problems.append(f"{base.name} and {s.name} were scored against different references")
        for key in set(base.signatures) & set(s.signatures):
            if base.signatures[key] != s.signatures[key]:
                problems.append(f"{base.name} and {s.name} were scored with different {SCORES[key]} signatures "
                                f"({base.signatures[key]} vs {s.signatures[key]})")
    for s in systems:
        if looks_tokenized(s.hyps):
            problems.append(f"{s.name}: the hypotheses look tokenized (spaces between Japanese words) where "
                            f"detokenized text is expected (--ref-tokenized if the references are tokenized too)")
        if s.hyps_tok is not None and not looks_tokenized(s.hyps_tok) and looks_tokenized(s.refs_tok):
            problems.append(f"{s.name}: the references are tokenized but the hypotheses are not")
    for p in problems[:1] if not force else problems:
        if not force:
            raise MTError(f"not comparable: {p} (--force compares anyway)")
        warn(f"not comparable: {p}")
    if base.split == "dev":
        warn("comparing on dev: dev chose the checkpoints and α, so its scores flatter every run; use --split test")


def _metrics(systems: list[System]) -> dict[str, tuple[Metric, Callable[[System], tuple[list[str], list[str]]]]]:
    """score key → (metric, the system's (hyps, refs) it scores); one object per score, one signature."""
    out: dict = {}
    if all(s.hyps_tok is not None for s in systems):
        out["bleu_tok"] = (BLEU(tokenize="none"), lambda s: (s.hyps_tok, s.refs_tok))
    ja, segment = metrics.ja_bleu_metric()
    out["bleu_ja"] = (ja, lambda s: (segment(s.hyps), segment(s.refs)))
    out["chrf"] = (CHRF(), lambda s: (s.hyps, s.refs))
    return out


def _signature(key: str, metric: Metric, test: str, n: int, seed: int) -> str:
    sig = metrics.ja_signature(metric) if key == "bleu_ja" else str(metric.get_signature())
    return f"{sig}|{test}:{n}|seed:{seed}"


def compare(systems: list[System], test: str = "bs", n: int = 1000, seed: int = significance.SEED) -> dict:
    """Scores, intervals and paired tests of every system against the first; a JSON-ready report."""
    n = n or (1000 if test == "bs" else 10000)
    counts = significance.bootstrap_counts(len(systems[0].refs), 1000 if test == "ar" else n, seed)
    report = {"baseline": systems[0].name, "split": systems[0].split, "test": test, "samples": n, "seed": seed,
              "systems": [s.name for s in systems], "scores": {}}
    for key, (metric, data) in _metrics(systems).items():
        stats = [significance.Statistics(metric, *data(s)) for s in systems]
        base_scores = stats[0].resampled(counts)
        rows = [{"system": systems[0].name, "score": stats[0].score,
                 "interval": _iv(significance.percentile_interval(base_scores))}]
        for s, st in zip(systems[1:], stats[1:]):
            interval, boot = significance.paired_bootstrap(stats[0], st, counts, base_scores)
            p = significance.approximate_randomization(stats[0], st, n, seed).p_value if test == "ar" else boot.p_value
            rows.append({"system": s.name, "score": st.score, "interval": _iv(interval), "delta": boot.delta,
                         "delta_interval": _iv(boot.delta_interval), "p": p})
        for row, adjusted in zip(rows[1:], significance.holm([r["p"] for r in rows[1:]])):
            row["p_holm"] = adjusted
        report["scores"][key] = {"name": SCORES[key], "signature": _signature(key, metric, test, n, seed), "rows": rows}
    return report


def _iv(iv: significance.Interval) -> dict:
    return {"mean": iv.mean, "low": iv.low, "high": iv.high, "half_width": iv.half_width}


# train.* settings that change how a run is carried out, not what it learns (a guard, threads, logging, caches)
OPERATIONAL = ("seed", "threads", "max_minutes", "kernel_cache", "trim_memory_every", "tensorboard",
               "save_every_steps", "keep_epochs")


def seed_groups(runs: list[Path]) -> list[list[Path]]:
    """Trained runs whose configs differ only in train.seed (and operational settings: OPERATIONAL) and that
    trained the same number of epochs, two or more each. Ensembles are not runs of a config: never grouped."""
    groups: dict[str, list[Path]] = {}
    for run in runs:
        if (run / "ensemble.json").exists():
            continue
        cfg = resumes.recorded_raw(run)  # as trained: config.toml with the changes made on resume
        for key in OPERATIONAL:
            cfg.get("train", {}).pop(key, None)
        cfg["epochs_trained"] = sum("epoch" in r for r in experiments.read_metrics(run))
        groups.setdefault(json.dumps(cfg, sort_keys=True), []).append(run)
    return [g for g in groups.values() if len(g) > 1]


def seed_spread(report: dict, group: list[Path]) -> dict:
    """Mean ± standard deviation across a seed group, per score: the training variance the bootstrap misses."""
    names = {r.name for r in group}
    out = {}
    for key, block in report["scores"].items():
        values = [row["score"] for row in block["rows"] if row["system"] in names]
        out[key] = {"mean": statistics.mean(values), "sd": statistics.stdev(values), "n": len(values)}
    return {"runs": sorted(names), "scores": out}


def from_runs(names: list[str], split: str, baseline: str | None = None,
              evaluate: Callable[[Path], None] | None = None) -> tuple[list[Path], list[System], list[str]]:
    """Runs (named, else all) → (runs, systems that have `split` hypotheses, a note per run that has none)."""
    runs = [experiments.find_run(n) for n in names] if names else experiments.all_runs()
    if not runs:
        raise MTError(f"no runs in {experiments.runs_root()}")
    if baseline:
        first = experiments.find_run(baseline)
        runs = [first] + [r for r in runs if r.resolve() != first.resolve()]
    systems, notes = [], []
    for run in runs:
        try:
            systems.append(run_system(run, split, evaluate))
        except MTError as e:
            if not str(e).startswith(f"run {run.name} has no"):
                raise
            notes.append(str(e))
    return runs, systems, notes


@dataclass(frozen=True)
class Request:
    """What `mt compare` was asked: runs (or files), split, test, output."""

    runs: list[str]
    split: str = "test"
    baseline: str | None = None
    test: str = "bs"
    samples: int = 0  # 0: 1000 resamples (bs), 10000 trials (ar)
    seed: int = significance.SEED
    fmt: str = "table"
    ref: Path | None = None  # with hyps: compare files, not runs
    hyps: list[Path] = field(default_factory=list)
    ref_tokenized: bool = False
    force: bool = False
    plot: Path | None = None
    x: str = "epochs"
    src: Path | None = None  # with hyps: their source, for the checks


def run(req: Request, evaluate: Callable[[Path], None] | None = None, warn: Callable[[str], None] = print) -> str:
    """`mt compare`: guards, scores, intervals, paired tests (and the plot); the formatted report."""
    if req.hyps or req.ref:
        if not (req.hyps and req.ref):
            raise MTError("--ref and --hyps go together")
        runs, systems, notes = [], file_systems(req.ref, req.hyps, req.ref_tokenized), []
        systems = [replace(s, src=req.src) for s in systems]
    else:
        runs, systems, notes = from_runs(req.runs, req.split, req.baseline, evaluate)
    if req.plot:
        experiments.plot_runs(runs, req.plot, req.x, req.force, warn)
    for note in notes:
        warn(note)
    table = experiments.runs_table(runs) if runs else None
    if not systems:
        return format_report({}, req.fmt, table) if req.fmt != "json" else json.dumps({"runs": table})
    check(systems, req.force, warn)
    report = compare(systems, req.test, req.samples, req.seed)
    report["seed_groups"] = [seed_spread(report, g) for g in seed_groups([s.run for s in systems if s.run])]
    if table:
        report["runs"] = table
    report["checks"] = system_checks(systems, warn)
    return format_report(report, req.fmt, table)


def system_checks(systems: list[System], warn: Callable[[str], None]) -> dict | None:
    """Lines each `mt check` flag fires on, per system with a known source (issue 30); a run is checked with
    its own vocabulary and corpus calibration."""
    rows = []
    for s in systems:
        if s.src is None or not s.src.is_file():
            continue
        sources = list(corpora.read_lines(s.src))
        if len(sources) != len(s.hyps):
            warn(f"checks: {s.name} has {len(s.hyps)} lines but its source {s.src} has {len(sources)}; not checked")
            continue
        checker = check_model.for_run(s.run, dropped=True) if s.run else checks.checker()
        rows.append({"system": s.name, **checks.totals(checks.check_lines(sources, s.hyps, checker), checker.checked())})
    return {"flags": list(checks.FLAGS), "rows": rows} if rows else None


# -- output ------------------------------------------------------------------------------------

def _cells(key: str, row: dict, holm: bool) -> list[str]:
    iv = row["interval"]
    cells = [row["system"], f"{row['score']:.2f}", f"{iv['mean']:.2f} ± {iv['half_width']:.2f}"]
    if "delta" in row:
        d = row["delta_interval"]
        cells += [f"{row['delta']:+.2f}", f"[{d['low']:+.2f}, {d['high']:+.2f}]", f"{row['p']:.4f}"]
        cells += [f"{row['p_holm']:.4f}"] if holm else []
        significant = (row["p_holm"] if holm else row["p"]) < 0.05
        cells.append("significantly different at p < 0.05" if significant else "not significantly different")
    else:
        cells += ["baseline", "", ""] + ([""] if holm else []) + [""]
    if key != "chrf":
        cells.append(band(row["score"]))
    return cells


def _heads(key: str, report: dict, holm: bool) -> list[str]:
    heads = ["system", "score", "bootstrap mean ± 95% CI", f"Δ vs {report['baseline']}", "95% CI of Δ", "p"]
    heads += ["p (Holm)"] if holm else []
    heads.append("verdict")
    return heads + (["reads as"] if key != "chrf" else [])


def _text_table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_report(report: dict, fmt: str = "table", runs_table: list[list[str]] | None = None) -> str:
    """The report as a text table, Markdown, LaTeX or JSON (JSON round-trips: it is the report itself)."""
    if fmt == "json":
        return json.dumps(report, indent=1, ensure_ascii=False)
    if not report:
        return "\n".join(_render(runs_table, fmt))
    holm = len(report["systems"]) > 2
    test = "paired bootstrap" if report["test"] == "bs" else "approximate randomization"
    out = [] if not runs_table else _render(runs_table, fmt) + [""]
    out.append(f"scored on {report['split']}; {test}, {report['samples']} samples, seed {report['seed']}; "
               f"baseline {report['baseline']}" + ("; p (Holm): adjusted for the comparisons made" if holm else ""))
    for key, block in report["scores"].items():
        rows = [_heads(key, report, holm)] + [_cells(key, r, holm) for r in block["rows"]]
        out += ["", f"{block['name']}  {block['signature']}"] + _render(rows, fmt)
    for group in report.get("seed_groups", []):
        spread = ", ".join(f"{SCORES[k]} {v['mean']:.2f} ± {v['sd']:.2f}" for k, v in group["scores"].items())
        out += ["", f"seeds {', '.join(group['runs'])}: mean ± sd across seeds: {spread}"]
    if report.get("checks"):
        flags = report["checks"]["flags"]
        rows = [["system", *flags]] + [[r["system"], *(str(r.get(f, "–")) for f in flags)] for r in report["checks"]["rows"]]
        out += ["", "checks: lines flagged (mt check; – not checked)"] + _render(rows, fmt)
    return "\n".join(out)


def _render(rows: list[list[str]], fmt: str) -> list[str]:
    if fmt == "markdown":
        return ["| " + " | ".join(r) + " |" for r in rows[:1]] + ["|" + "---|" * len(rows[0])] + \
               ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if fmt == "latex":
        esc = lambda c: c.replace("%", r"\%").replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("_", r"\_")  # noqa: E731
        return ([r"\begin{tabular}{" + "l" * len(rows[0]) + "}", r"\hline"]
                + [" & ".join(esc(c) for c in r) + r" \\" for r in rows[:1]] + [r"\hline"]
                + [" & ".join(esc(c) for c in r) + r" \\" for r in rows[1:]] + [r"\hline", r"\end{tabular}"])
    return _text_table(rows)
