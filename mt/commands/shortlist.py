"""`mt shortlist`: build a run's target-vocabulary shortlist (mt/shortlist.py), for runs trained before runs had one."""

from __future__ import annotations

import argparse

from mt.commands.common import note, shortlist


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt shortlist`."""
    p = sub.add_parser("shortlist", help="build a run's target-vocabulary shortlist for faster decoding",
                       description="Counts which target words each source word's training pairs hold and writes "
                                   "RUN/shortlist.safetensors, which `--shortlist FIRST,BEST` decodes over. A new run "
                                   "writes it when it starts; this builds it for a run trained before.")
    p.add_argument("run", help="run name or folder")
    p.add_argument("--measure", type=shortlist, action="append", default=[], metavar="FIRST,BEST",
                   help="instead: for each FIRST,BEST (repeat the flag), the share of the split's sentences whose greedy "
                        "translation over the whole vocabulary uses only shortlisted words (so decodes identically), "
                        "and the words a batch of 256 decodes over")
    p.add_argument("--split", choices=["dev", "test"], default="dev", help="the split --measure reads")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.shortlist import build_for

    checkpoint = experiments.best_checkpoint(experiments.find_run(args.run))
    if args.measure:
        print("shortlist   exact greedy   words per batch of 256")
        for row in _measure(checkpoint, args.measure, args.split):
            first, best = row["shortlist"]
            print(f"{f'{first},{best}':10s}  {row['exact_greedy']:11.1%}   {row['words_per_batch']:,.0f}")
        return 0
    print(f"wrote {build_for(checkpoint, note)}")
    return 0


def _measure(checkpoint, settings: list[tuple[int, int]], split: str) -> list[dict]:
    """mt.shortlist.measure on the run's own encoded `split` (dev or test), with its checkpoint's shortlist."""
    from mt.shortlist import measure, run_data
    from mt.translate import Translator

    sources = run_data(checkpoint, note).split(split).src_rows()
    return measure(Translator.from_checkpoint(checkpoint), sources, settings)
