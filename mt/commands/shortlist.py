"""`mt shortlist`: build a run's target-vocabulary shortlist (mt/shortlist.py), for runs trained before runs had one."""

from __future__ import annotations

import argparse

from mt.commands.common import note


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt shortlist`."""
    p = sub.add_parser("shortlist", help="build a run's target-vocabulary shortlist for faster decoding",
                       description="Counts which target words each source word's training pairs hold and writes "
                                   "RUN/shortlist.safetensors, which `--shortlist FIRST,BEST` decodes over. A new run "
                                   "writes it when it starts; this builds it for a run trained before.")
    p.add_argument("run", help="run name or folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.shortlist import build_for

    path = build_for(experiments.best_checkpoint(experiments.find_run(args.run)), note)
    print(f"wrote {path}")
    return 0
