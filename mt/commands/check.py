"""`mt check`: flag translations not to trust as they are, with no reference (mt/checks.py)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from mt.checks import READBACK_BELOW
from mt.commands import common
from mt.errors import MTError


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt check`."""
    p = sub.add_parser("check", help="flag translations not to trust as they are (no reference needed)",
                       description="For every line the flags that apply (untranslated, number, repeat, short, "
                                   "unknown, dropped, readback), then totals; --run/--checkpoint adds `unknown` "
                                   "(source words outside the model's vocabulary) and calibrates `short` on the run's "
                                   "corpus; --dropped has the model read each pair for content words the translation "
                                   "ignores (any system's output; the model must read raw Japanese); --reverse has a "
                                   "ja-en model read the English back from each translation (`readback`).")
    p.add_argument("--src", required=True, help="English source file, one sentence a line (raw or tokenized)")
    p.add_argument("--hyp", required=True, help="its Japanese translations (raw or corpus tokens)")
    common.json_out(p, "every line's flags and the totals")
    common.model_source(p, with_device=False)
    p.add_argument("--corpus", help="calibrate `short` on this corpus (default: the run's, else small_parallel_enja)")
    p.add_argument("--allow", help="file of words kept in Latin script (names, brands), one a line")
    p.add_argument("--dropped", action="store_true", help=DROPPED_HELP + " (needs --run or --checkpoint)")
    p.add_argument("--dropped-below", type=float, metavar="NATS",
                   help="with --dropped: a word counts as ignored when the translation is this much likelier (in "
                        "nats, negative: stricter) or less likely without it (default 0: likelier at all)")
    p.add_argument("--reverse", metavar="RUN",
                   help="flag `readback`: source words this ja-en run (or checkpoint) cannot read back from the "
                        "translation (one forced pass per line)")
    p.add_argument("--readback-below", type=float, metavar="NATS",
                   help="with --reverse: a word counts as not said when its log-probability read back is below this "
                        f"(default {READBACK_BELOW:g})")
    p.add_argument("--labels", help="a human reading of the same lines (TSV: `line`, then a yes/no column per flag, "
                                    "or a judgement's `cause`): print how each flag agrees with it")
    p.set_defaults(handler=run)


DROPPED_HELP = ("flag `dropped`: source words the translation ignores, read by the model (one forced pass per "
                "content word)")


def run(args: argparse.Namespace) -> int:
    import json

    from mt import checks, files

    sources, translations = checks.read_pair(Path(args.src), Path(args.hyp))
    allow = checks.read_allow(Path(args.allow) if args.allow else None)
    if args.dropped and not (args.run or args.checkpoint):
        raise MTError("--dropped needs a model to read the pairs: --run RUN or --checkpoint FILE")
    if args.run or args.checkpoint:
        from mt import check_model, experiments

        path = experiments.resolve_checkpoint(args.run, args.checkpoint)
        checker = check_model.for_model(path, allow=allow, corpus=args.corpus, dropped=args.dropped)
    else:
        checker = checks.checker(args.corpus, allow=allow, explicit=bool(args.corpus))
    if args.dropped_below is not None:
        checker = replace(checker, ignored_below=args.dropped_below)
    if args.readback_below is not None and not args.reverse:
        raise MTError("--readback-below needs a ja-en model to read the translations back: --reverse RUN")
    if args.reverse:
        import torch

        from mt import check_model
        from mt.reverse import Reverse

        checker = check_model.with_readback(checker, Reverse.load(args.reverse, torch.device("cpu")))
        if args.readback_below is not None:
            checker = replace(checker, readback_below=args.readback_below)
    labels = checks.read_labels(Path(args.labels)) if args.labels else None
    report = checks.report(sources, translations, checker)
    for line in checks.format_report(report):
        print(line)
    for line in checks.agreement(report, labels) if labels else []:
        print(line)
    if args.json:
        files.write_text(Path(args.json), json.dumps(report, indent=1, ensure_ascii=False))
    return 0
