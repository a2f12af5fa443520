"""`mt evaluate`: score a model or an ensemble on a test set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mt.commands import common


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt evaluate`."""
    p = sub.add_parser("evaluate", help="score a model on a test set",
                       description="Scores with sacrebleu signatures; writes hyps-<split>.txt and eval-<split>.json "
                                   "(with the beam and α used) into the run folder (…<split>.<checkpoint>… for "
                                   "--checkpoint); an ensemble into its own run folder, --name or ensemble-A+B.")
    common.model_source(p, ensemble=True)
    common.eval_files(p, "source file (with --ref) instead of the run's corpus split")
    p.add_argument("--beam", type=int, help="beam size (default: the run's decode.beam)")
    p.add_argument("--alpha", type=float, help=common.ALPHA_HELP)
    p.add_argument("--keep-unk", action="store_true", help="score <unk> outputs as they are (no source-word copy)")
    common.decode_options(p)
    p.add_argument("--corpus", help="score on this corpus's --split (e.g. everyday), not the run's own; "
                                    "outputs are named <corpus>-<split>")
    p.add_argument("--name", help="an ensemble's run folder for its outputs (default: ensemble-<A>+<B>)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import check_model, evaluate, experiments, translate

    paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
    eval_set = evaluate.eval_set(paths[0], args.split, args.src, args.ref, args.ref_tokenized, args.corpus)
    translator = translate.Translator.from_checkpoints(paths, args.device, args.keep_unk, args.weights, args.combine,
                                                      **common.decode_overrides(args))
    common.note(f"evaluating {translate.describe(paths, translator)} on {eval_set.src}")
    out_dir, name = evaluate.output_place(paths, eval_set, derived=bool(args.checkpoint), weights=args.weights,
                                          combine=args.combine, name=args.name)
    if args.dictionary:  # hyps-<split>.<dictionary>.txt: beside the run's own outputs, not over them
        name = f"{name}.{args.dictionary}"
    if args.numbers:
        name = f"{name}.numbers-{args.numbers}"
    if args.coverage:
        name = f"{name}.coverage-{args.coverage:g}"
    if args.names:
        name = f"{name}.names-{args.names}"
    if args.precision:
        name = f"{name}.{args.precision}"
    if args.clauses is not None:
        name = f"{name}.clauses-{args.clauses}"
    if args.patience is not None:
        name = f"{name}.patience-{args.patience:g}"
    if args.shortlist is not None:
        name = f"{name}.shortlist-{args.shortlist[0]}-{args.shortlist[1]}"
    if args.reverse is not None:
        name = f"{name}.reverse-{Path(args.reverse).name or 'off'}"
    if args.reverse_weight is not None:
        name = f"{name}.reverse-weight-{args.reverse_weight:g}"
    english = getattr(translator, "lang", "ja") == "en"  # a ja-en model: no checks (they read Japanese outputs)
    checker = None if english else check_model.for_translator(translator, paths[0], dropped=True)
    scores = evaluate.evaluate(translator, eval_set.src, eval_set.ref, eval_set.ref_tokenized, out_dir, name, args.beam,
                               checker)
    print(evaluate.format_scores(scores))
    print(f"hypotheses and scores written to {out_dir}", file=sys.stderr)
    return 0
