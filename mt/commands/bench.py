"""`mt bench train|serve|translate`: speed benchmarks (docs/speed.md, docs/serving.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mt.commands import common
from mt.errors import MTError


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt bench {train,serve,translate}`."""
    bench = sub.add_parser("bench", help="measure training or translation speed").add_subparsers(
        dest="action", required=True)
    bt = bench.add_parser("train", help="training tokens/s, model FLOPs/s, padding, peak RSS")
    common.model_config(bt)
    bt.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    bt.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    bt.add_argument("--repeats", type=int, default=3, help="timed passes (medians are reported)")
    bt.add_argument("--threads", type=int, default=0, help="torch threads (default: train.threads, else all)")
    common.json_out(bt)
    bt.set_defaults(handler=run_train)
    bs = bench.add_parser("serve", help="mt serve under load (batching on/off) or a soak with bad requests")
    common.model_source(bs, with_device=False)
    bs.add_argument("--clients", type=common.ints, default="1,4,16,64", help="concurrent clients, comma-separated")
    bs.add_argument("--requests", type=int, default=32, help="requests per client at each client count")
    bs.add_argument("--beam", type=int, default=1, help="beam of every request (default 1: greedy)")
    bs.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    bs.add_argument("--soak", type=int, default=0, help="instead: a soak of this many requests, one in five bad")
    common.json_out(bs)
    bs.set_defaults(handler=run_serve)
    _add_translate(bench)


def _add_translate(bench: argparse._SubParsersAction) -> None:
    p = bench.add_parser("translate", help="decoding speed, BLEU and memory per engine, or of an ensemble")
    common.model_source(p, ensemble=True, with_device=False, ensemble_note=", measured beside each member")
    p.add_argument("--alpha", type=float, help="length penalty α (of the ensemble; its members keep their own)")
    p.add_argument("--engines", default="torch,torch-int8,ct2,ct2-int8",
                   help="comma-separated, of torch, torch-bf16, torch-int8, ct2, ct2-int8")
    p.add_argument("--batch-size", type=_sizes, default=(),
                   help="sentences per decoding batch, comma-separated to measure several (e.g. 64,256; default: "
                        "the model's decode.batch_size)")
    p.add_argument("--patience", type=_patiences, default=(),
                   help="the torch engines' decode.patience, comma-separated to measure several (e.g. 0,1: the exact "
                        "stopping rule against CTranslate2's; default: the model's)")
    p.add_argument("--shortlist", type=common.shortlist, action="append", default=[], metavar="FIRST,BEST",
                   help="the torch engines' decode.shortlist; repeat to measure several (e.g. --shortlist 0,0 "
                        "--shortlist 500,20: the whole vocabulary against a shortlist; default: the model's)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes (medians are reported)")
    p.add_argument("--threads", type=int, default=2, help="threads per engine")
    p.add_argument("--limit", type=int, default=0, help="only the first N test sentences")
    p.add_argument("--corpus", help="time this corpus's test split (e.g. everyday), not the run's own")
    p.add_argument("--beam", type=int, help="only this beam (default: 1 and 5; with --overhead: the run's decode.beam)")
    p.add_argument("--overhead", action="store_true",
                   help="instead: the whole mt translate (torch) with --no-split, default splitting, --check, and "
                        "--check --dictionary jmdict --numbers source, interleaved, against --no-split")
    common.json_out(p)
    p.set_defaults(handler=run_translate)


def run_train(args: argparse.Namespace) -> int:
    from mt.tools import bench

    cfg = bench.load_config(args.model, args.config, args.set, args.corpus)
    common.note(f"benchmarking {cfg.model_type} training ({args.warmup} warm-up + {args.repeats} × "
                f"{args.steps} steps)")
    record = bench.bench_train(cfg, args.steps, args.warmup, args.repeats, args.threads)
    return _report(bench.format_train(record), record, args.json)


def run_serve(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.tools import bench_serve

    path = experiments.resolve_checkpoint(args.run, args.checkpoint)
    if args.soak:
        record = bench_serve.soak(path, args.soak, threads=args.threads, log=common.note)
    else:
        record = bench_serve.bench_serve(path, args.clients, args.requests, args.beam, args.threads, common.note)
    return _report(bench_serve.format_serve(record), record, args.json)


def _sizes(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated positive integers (a ValueError becomes one usage error, exit 2)."""
    sizes = tuple(int(t) for t in text.split(",") if t.strip())
    if not sizes or min(sizes) < 1:
        raise ValueError(text)
    return sizes


def _patiences(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated numbers ≥ 0."""
    values = tuple(float(t) for t in text.split(",") if t.strip())
    if not values or not min(values) >= 0:
        raise ValueError(text)
    return values


def run_translate(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.tools.bench_translate import bench_translate, format_translate

    if args.beam is not None and args.beam < 1:
        raise MTError("--beam must be at least 1")
    paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
    if args.overhead:
        from mt.tools.bench_overhead import bench_overhead, format_overhead

        record = bench_overhead(paths, args.repeats, args.threads, args.beam, args.limit, args.corpus, common.note,
                                args.weights, args.alpha, args.combine)
        return _report(format_overhead(record), record, args.json)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    record = bench_translate(paths, engines, args.repeats, args.threads, (args.beam,) if args.beam else (1, 5),
                             args.limit, common.note, args.weights, args.alpha, args.combine, args.corpus,
                             args.batch_size, args.patience, tuple(args.shortlist))
    return _report(format_translate(record), record, args.json)


def _report(lines: list[str], record: dict, json_file: str | None) -> int:
    """Print a benchmark's table; write its record where --json says."""
    from mt.tools import bench

    for line in lines:
        print(line)
    if json_file:
        bench.write_json(record, Path(json_file))
    return 0
