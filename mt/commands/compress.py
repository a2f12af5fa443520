"""Lighter models and their trade-off: `mt average`, `quantize`, `prune`, `distill`, `compress-report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from mt.commands import common
from mt.errors import MTError

RUN_OR_FILE = "run name or folder, or a checkpoint file"


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the five commands, in the order of `mt --help`."""
    avg = sub.add_parser("average", help="average the last k epoch checkpoints of a run")
    avg.add_argument("run", help="run name or folder")
    avg.add_argument("--last", type=int, default=5, help="how many of the last epoch checkpoints")
    avg.add_argument("--out", help="output checkpoint (default: <run>/averaged.safetensors)")
    avg.set_defaults(handler=run_average)
    qz = sub.add_parser("quantize", help="dynamic int8 quantization of a run's best checkpoint")
    qz.add_argument("run", help=RUN_OR_FILE)
    qz.add_argument("--out", help="output checkpoint (default: <run>/int8.safetensors)")
    qz.set_defaults(handler=run_quantize)
    _add_prune(sub)
    _add_distill(sub)
    _add_report(sub)


def run_average(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.train_state import average_run

    out, epochs = average_run(experiments.find_run(args.run), args.last, Path(args.out) if args.out else None)
    print(f"averaged epochs {epochs} into {out}")
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    from mt.tools import compress

    src = compress.resolve_source(args.run)
    tensors, meta = compress.quantize(src)
    out = compress.save_compressed(tensors, meta, Path(args.out) if args.out else None)
    q = meta["quantized"]
    print(f"quantized {src} into {out}: {len(q['linear'])} Linear + {len(q['rnn'])} RNN layers int8, "
          f"{out.stat().st_size / 1e6:.2f} MB, weights {q['size_ratio']}x smaller than fp32")
    return 0


def _add_prune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="magnitude pruning of the weight matrices (stored sparse)")
    p.add_argument("run", help=RUN_OR_FILE)
    p.add_argument("--amount", type=float, required=True,
                   help="fraction of weights to zero (or, --structured, of heads and FFN neurons to remove), e.g. 0.3")
    p.add_argument("--structured", action="store_true",
                   help="remove whole attention heads and FFN neurons: a smaller, faster dense Transformer")
    p.add_argument("--scope", choices=["global", "layer"], default="global",
                   help="rank magnitudes over all matrices (global) or within each (layer)")
    p.add_argument("--finetune-steps", type=int, default=0, help="train N batches with the mask fixed")
    p.add_argument("--lr", type=float,
                   help="fine-tuning peak learning rate (default: train.lr / 2; warm-up over the first 10%% of "
                        "steps, then a cosine decay to 0)")
    p.add_argument("--distill", action="store_true",
                   help="fine-tune on the unpruned model's own beam translations of the training set (sequence-level "
                        "distillation; made once and shared with mt distill) instead of the references")
    common.device(p)
    p.add_argument("--out", help="output checkpoint (default: <run>/pruned-<percent>.safetensors, "
                                 "--structured: <run>/structured-<percent>.safetensors)")
    p.set_defaults(handler=run_prune)


def run_prune(args: argparse.Namespace) -> int:
    from mt.tools import compress, structured

    src = compress.resolve_source(args.run)
    if args.distill and not args.finetune_steps:
        raise MTError("--distill chooses what the pruned model is fine-tuned on: give --finetune-steps N too")
    if args.structured:
        tensors, meta = structured.prune_structured(src, args.amount, args.finetune_steps, args.lr, args.device,
                                                    common.note, args.distill)
    else:
        tensors, meta = compress.prune(src, args.amount, args.scope, args.finetune_steps, args.lr, args.device,
                                       common.note, args.distill)
    out = compress.save_compressed(tensors, meta, Path(args.out) if args.out else None)
    print(f"pruned {src} into {out}: {_pruned(meta, args, f'{out.stat().st_size / 1e6:.2f} MB')}")
    return 0


def _pruned(meta: dict, args: argparse.Namespace, size: str) -> str:
    """What pruning left, for the summary line."""
    if "structured" in meta:
        s = meta["structured"]
        return (f"{s['heads']} heads per attention module, {s['d_ff']} FFN neurons, "
                f"{s['params']:,} parameters (was {s['params_before']:,}), {size}")
    p = meta["pruned"]
    return (f"sparsity {p['sparsity']:.4f} of weight matrices ({p['sparsity_all_params']:.4f} of all parameters; "
            f"asked {args.amount} {args.scope}), {size}, weights {p['size_ratio']}x smaller than fp32")


def _add_distill(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="sequence-level distillation: train a student on teacher translations")
    p.add_argument("--teacher", required=True, help="teacher run name or folder")
    common.model_config(p, default="transformer", config_help="student TOML config", corpus=False)
    p.add_argument("--name", help="student run name (default: <model>-distilled-<teacher>)")
    p.add_argument("--limit", type=int, default=0, help="distill only the first N training sentences")
    p.add_argument("--epochs", type=int, help="student epochs (default: the config's train.epochs)")
    p.add_argument("--beam", type=int, help="teacher beam size (default: the teacher's decode.beam)")
    common.device(p)
    p.set_defaults(handler=run_distill)


def run_distill(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.tools.distill import distill

    teacher = experiments.find_run(args.teacher)
    run, summary = distill(teacher, args.model, Path(args.config) if args.config else None, args.set,
                           args.name, args.limit, args.epochs, args.beam, args.device, common.progress)
    print(f"done ({summary['stopped']}): student best dev BLEU {summary['best_dev_bleu']:.2f} at epoch "
          f"{summary['best_epoch']}; run folder {run}")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress-report", help="size / BLEU / speed / memory of checkpoints side by side",
                       description="Times every checkpoint at each thread count and tests each BLEU against the "
                                   "first row's (paired bootstrap, as mt compare); docs/compression.md.")
    p.add_argument("rows", nargs="+", metavar="[LABEL=]CHECKPOINT", help="checkpoint files or run names")
    common.eval_files(p, "source file (default: the first checkpoint's corpus split)")
    p.add_argument("--speed-lines", type=int, default=500, help="sentences timed for sent/s")
    p.add_argument("--repeats", type=int, default=3, help="timed passes (the median is reported)")
    p.add_argument("--threads", default="2,1",
                   help="thread counts to time, comma-separated (default 2,1; 0 = torch's default)")
    common.json_out(p, "report")
    p.add_argument("--markdown", help="also write the table in Markdown (speeds × the first row) to this file")
    p.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    import shlex

    from mt import evaluate, files
    from mt.tools import tradeoff

    threads = tradeoff.parse_threads(args.threads)
    rows = [tradeoff.parse_row(r) for r in args.rows]
    eval_set = evaluate.eval_set(rows[0][1], args.split, args.src, args.ref, args.ref_tokenized)
    common.note(f"measuring {len(rows)} checkpoints on {eval_set.src} at {args.threads} threads")
    report = tradeoff.compression_report(rows, eval_set.src, eval_set.ref, eval_set.ref_tokenized, args.speed_lines,
                                         args.repeats, threads, log=common.note)
    report["command"] = shlex.join(["mt", "compress-report", *args.rows, "--threads", args.threads,
                                    "--split", args.split, "--speed-lines", str(args.speed_lines)])
    print("\n".join(tradeoff.format_report(report)))
    if args.json:
        tradeoff.write_json(report, Path(args.json))
    if args.markdown:
        files.write_text(Path(args.markdown), "\n".join(tradeoff.format_markdown(report)) + "\n")
    return 0
