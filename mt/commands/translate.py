"""`mt translate`: English on stdin → Japanese on stdout."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from mt.commands import common
from mt.errors import MTError


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt translate`."""
    p = sub.add_parser("translate", help="English on stdin → Japanese on stdout",
                       description="Raw English on stdin → Japanese on stdout, one line per line; the model (or "
                                   "each ensemble member) is named on stderr.")
    common.model_source(p, ensemble=True)
    p.add_argument("--beam", type=int, help="beam size (default: the run's decode.beam)")
    p.add_argument("--alpha", type=float, help=common.ALPHA_HELP)
    p.add_argument("--keep-unk", action="store_true", help="print <unk> rather than copying the attended source word")
    common.decode_options(p)
    p.add_argument("--batch-size", type=int, help="sentences per decoding batch (default: the run's decode.batch_size)")
    p.add_argument("--nbest", type=int, default=1, help="print the N best translations of each line, joined by |||")
    p.add_argument("--tokenized", action="store_true", help="print model words separated by spaces")
    p.add_argument("--engine", choices=["torch", "ctranslate2"], default="torch", help="inference engine")
    p.add_argument("--ct2-dir", help="CTranslate2 export folder (with --engine ctranslate2; see `mt export`)")
    p.add_argument("--no-split", action="store_true",
                   help=common.SPLIT_HELP + "; a line past the model's limit is truncated, with a warning")
    p.add_argument("--check", action="store_true", help="flag doubtful translations on stderr (see `mt check`)")
    p.add_argument("--dropped", action="store_true",
                   help="with --check, flag `dropped` too: source words the translation ignores, read by the model "
                        "(one forced pass per content word: about doubles the decoding time)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import translate

    translator = _ct2(args) if args.engine == "ctranslate2" else _torch(args)
    if args.dropped and not args.check:
        raise MTError("--dropped is one of --check's flags: give --check --dropped")
    after = _checks(translator, None if args.engine == "ctranslate2" else _paths(args)[0],
                    args.dropped) if args.check else None
    translate.stream(translator, sys.stdin.buffer, sys.stdout, args.beam, args.nbest, args.tokenized,
                     args.batch_size, common.warn, after, split=not args.no_split)
    return 0


def _paths(args: argparse.Namespace):
    from mt import experiments

    return experiments.resolve_checkpoints(args.run, args.checkpoint)


def _checks(translator, path, dropped: bool = False):
    """--check: each line's flags on stderr (`path`: the checkpoint, for its corpus and vocabulary)."""
    from mt import check_model, checks

    checker = check_model.for_translator(translator, path, dropped)
    common.note(f"checking each line; {checker.length.describe() if checker.length else 'short: skipped'}")
    if dropped and "dropped" in checker.skipped:
        common.note(f"dropped: skipped ({checker.skipped['dropped']})")
    return checks.reporter(checker, common.note)


def _torch(args: argparse.Namespace):
    """The --run/--checkpoint model (or ensemble), named on stderr."""
    from mt import experiments, translate

    paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
    translator = translate.Translator.from_checkpoints(paths, args.device, args.keep_unk, args.weights, args.combine,
                                                      **common.decode_overrides(args))
    common.note(f"translating with {translate.describe(paths, translator)}")
    return translator


def _ct2(args: argparse.Namespace):
    """The --ct2-dir export, named on stderr."""
    from mt.tools.export_ct2 import CT2Translator

    if not args.ct2_dir:
        raise MTError("--engine ctranslate2 needs --ct2-dir DIR (a folder written by `mt export`)")
    torch_only = [f"--{k.replace('_', '-')}" for k in common.TORCH_OPTIONS if getattr(args, k) is not None]
    if torch_only:
        raise MTError(f"{', '.join(torch_only)}: the PyTorch engine's (--engine torch); "
                      "the CTranslate2 engine decodes without them")
    common.note(f"translating with {args.ct2_dir} (ctranslate2)")
    translator = CT2Translator(args.ct2_dir, args.device)
    if args.clauses is not None:  # sentence planning is the engines' common ground (mt.translate.translate_lines)
        translator.decode = dataclasses.replace(translator.decode, clauses=args.clauses)
    return translator
