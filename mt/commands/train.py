"""`mt train`: train a model, or resume a run."""

from __future__ import annotations

import argparse
import os

from mt.commands import common
from mt.errors import MTError


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt train`."""
    p = sub.add_parser("train", help="train a model",
                       description="Train a model: defaults from experiments/<model>.toml; --resume RUN "
                                   "continues exactly where the run stopped (also after SIGKILL or Ctrl-C).")
    common.model_config(p)
    p.add_argument("--name", help="run name (default: <model>-<corpus>)")
    p.add_argument("--epochs", type=int, help="epochs to train (default: the config's train.epochs)")
    p.add_argument("--limit", type=int, help="use only the first N training pairs")
    common.device(p)
    p.add_argument("--seed", type=int, help="random seed (default: the config's train.seed)")
    p.add_argument("--resume", metavar="RUN", help="continue a run exactly where it stopped")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import config

    flags = {"data.corpus": args.corpus, "train.epochs": args.epochs, "data.limit": args.limit, "train.seed": args.seed}
    if args.resume and (given := [f for f, v in (("--model", args.model), ("--config", args.config),
                                                  ("--name", args.name)) if v]):
        raise MTError(f"{given[0]} does not apply to --resume {args.resume}: a resumed run keeps its own config and name")
    # checked before torch loads (about a second) or any data work: a typo fails at once
    cfg = None if args.resume else config.load(args.model, args.config, args.set, flags)
    from mt import trainer

    run_dir, summary = trainer.start(cfg, args.name, args.resume, flags, args.set, args.device, common.progress)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        print(f"done ({summary['stopped']}): best dev BLEU {summary['best_dev_bleu']:.2f} at epoch "
              f"{summary['best_epoch']}; run folder {run_dir}"
              + ("" if summary.get("complete", True) else
                 f" (incomplete: {summary['epochs']} of {summary['planned_epochs']} epochs)"))
    return 0
