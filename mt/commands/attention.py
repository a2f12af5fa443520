"""`mt attention`: the attention of one translated sentence as a heatmap."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mt.commands import common


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt attention`."""
    p = sub.add_parser("attention", help="plot the attention of one translated sentence as a heatmap")
    common.model_source(p)
    p.add_argument("sentence", help="an English sentence")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--layer", type=int, help="decoder layer, 1 = first (default: the last)")
    p.add_argument("--head", type=head, default="mean", help="head number from 1, or mean (default)")
    p.add_argument("--self-attention", action="store_true", help="decoder self-attention instead")
    p.add_argument("--beam", type=int, help="beam size for the translation (default: the run's)")
    p.set_defaults(handler=run)


def head(value: str) -> int | str:
    """A head number, or mean."""
    if value == "mean":
        return value
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a head number or mean, got {value!r}")


def run(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.tools.attention_plot import draw_attention
    from mt.translate import Translator

    path = experiments.resolve_checkpoint(args.run, args.checkpoint)
    translator = Translator.from_checkpoint(path, args.device)
    kind = "self" if args.self_attention else "cross"
    out, _ = draw_attention(translator, path, args.sentence, Path(args.out), args.layer, args.head, kind,
                            args.beam, common.warn)
    print(f"attention map written to {out}", file=sys.stderr)
    return 0
