"""`mt compare`: runs or hypothesis files side by side, with confidence intervals and paired significance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mt.commands import common


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt compare`."""
    p = sub.add_parser("compare", help="runs side by side: scores, confidence intervals, paired significance",
                       description="The runs' training figures, then every score with its bootstrap 95 % interval "
                                   "and, against the baseline, Δ with its interval, p and Holm p (docs/compare.md).")
    p.add_argument("runs", nargs="*", help="run names or folders (default: every run)")
    p.add_argument("--split", choices=["test", "dev"], default="test", help="the corpus split whose scores are compared")
    p.add_argument("--corpus", help="compare the runs on this corpus's --split (as `mt evaluate --corpus`)")
    p.add_argument("--baseline", help="the run the others are compared with (default: the first)")
    p.add_argument("--paired", choices=["bs", "ar"], default="bs",
                   help="paired bootstrap resampling (default) or approximate randomization")
    p.add_argument("--samples", type=int, default=0, help="resamples (bs, default 1000) or trials (ar, default 10000)")
    p.add_argument("--seed", type=int, default=12345, help="random seed of the resampling (sacrebleu's default)")
    p.add_argument("--format", choices=["table", "json", "markdown", "latex"], default="table", help="output format")
    p.add_argument("--ref", help="reference file: compare --hyps files instead of runs (like sacrebleu -i)")
    p.add_argument("--hyps", nargs="+", help="hypothesis files, the first is the baseline")
    p.add_argument("--ref-tokenized", action="store_true", help="--ref and --hyps hold corpus tokens")
    p.add_argument("--src", help="the source file of --ref/--hyps: counts `mt check` flags per system")
    p.add_argument("--evaluate", action="store_true", help="run `mt evaluate` for runs without hypotheses")
    p.add_argument("--force", action="store_true", help="compare even what is not comparable (with a warning)")
    p.add_argument("--plot", help="write dev BLEU / loss curves to this PNG")
    p.add_argument("--x", choices=["epochs", "updates", "minutes"], default="epochs", help="x axis of --plot")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import compare, evaluate

    split = evaluate.split_name(args.split, args.corpus)
    req = compare.Request(args.runs, split, args.baseline, args.paired, args.samples, args.seed, args.format,
                          Path(args.ref) if args.ref else None, [Path(h) for h in args.hyps or []], args.ref_tokenized,
                          args.force, Path(args.plot) if args.plot else None, args.x,
                          Path(args.src) if args.src else None)
    print(compare.run(req, evaluate.evaluate_run(args.split, corpus=args.corpus) if args.evaluate else None, common.warn))
    if args.plot:
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
