"""The `mt` command: parse arguments, call one library function, print. No logic here.

Each command imports what it uses inside its function: `mt --help`, `mt corpus list` and argument
errors answer without loading torch (about 2 s), and a tool's optional dependencies load only for it."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.util import find_spec
from pathlib import Path

from mt.errors import MTError


def _add_model_source(p: argparse.ArgumentParser, ensemble: bool = False) -> None:
    """--run / --checkpoint: one model, or (ensemble) several, each flag repeated once per model."""
    more = "; repeat for an ensemble" if ensemble else ""
    p.add_argument("--run", action="append", help=f"run name or folder (default: the most recent run){more}")
    p.add_argument("--checkpoint", action="append", help=f"a checkpoint file instead of a run{more}")
    if ensemble:
        p.add_argument("--weights", type=_weights, help="ensemble weights, e.g. 0.6,0.4 (default: equal)")
        p.add_argument("--combine", choices=["prob", "logprob"], default="prob", help=COMBINE_HELP)
    p.add_argument("--device", default="cpu", help="cpu or cuda")


COMBINE_HELP = ("how an ensemble mixes its members: prob = log of the weighted mean of probabilities (default, "
                "as fairseq), logprob = weighted mean of log-probabilities, renormalized (as OpenNMT-py, Marian)")


SPLIT_HELP = ("translate each line whole, as before sentence splitting (default: sentence by sentence, an over-long "
              "sentence cut at clause punctuation)")


def _one_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", help="run name or folder (default: the most recent run)")
    p.add_argument("--checkpoint", help="a checkpoint file instead of a run")


def _weights(value: str) -> list[float]:
    try:
        return [float(w) for w in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0.6,0.4, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mt", description="English→Japanese neural machine translation")
    sub = parser.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="list or fetch corpora").add_subparsers(dest="action", required=True)
    corpus.add_parser("list", help="registered corpora")
    fetch = corpus.add_parser("fetch", help="download (or copy from a mirror) and verify a corpus")
    fetch.add_argument("name")
    fetch.add_argument("--mirror", help="folder holding <name>/ (default: $MT_CORPUS_MIRROR)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if cached")

    train = sub.add_parser("train", help="train a model")
    train.add_argument("--model", choices=["seq2seq", "transformer"], default=None)
    train.add_argument("--config", help="TOML config (default: experiments/<model>.toml)")
    train.add_argument("--corpus", help="corpus name, folder or TSV file")
    train.add_argument("--name", help="run name (default: <model>-<corpus>)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--limit", type=int, help="use only the first N training pairs")
    train.add_argument("--device", default="cpu")
    train.add_argument("--seed", type=int)
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    train.add_argument("--resume", metavar="RUN", help="continue a run exactly where it stopped")

    tr = sub.add_parser("translate", help="English on stdin → Japanese on stdout")
    _add_model_source(tr, ensemble=True)
    tr.add_argument("--beam", type=int)
    tr.add_argument("--alpha", type=float, help="length penalty α (default: the run's decode.alpha)")
    tr.add_argument("--keep-unk", action="store_true", help="print <unk> rather than copying the attended source word")
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--nbest", type=int, default=1)
    tr.add_argument("--tokenized", action="store_true", help="print model words separated by spaces")
    tr.add_argument("--engine", choices=["torch", "ctranslate2"], default="torch")
    tr.add_argument("--ct2-dir", help="CTranslate2 export folder (with --engine ctranslate2; see `mt export`)")
    tr.add_argument("--no-split", action="store_true",
                    help=SPLIT_HELP + "; a line past the model's limit is truncated, with a warning")

    ev = sub.add_parser("evaluate", help="score a model on a test set")
    _add_model_source(ev, ensemble=True)
    ev.add_argument("--split", choices=["dev", "test"], default="test")
    ev.add_argument("--src", help="source file (with --ref) instead of the run's corpus split")
    ev.add_argument("--ref", help="reference file")
    ev.add_argument("--ref-tokenized", action="store_true", help="the --ref file is space-tokenized")
    ev.add_argument("--beam", type=int)
    ev.add_argument("--alpha", type=float, help="length penalty α (default: the run's decode.alpha)")
    ev.add_argument("--keep-unk", action="store_true", help="score <unk> outputs as they are (no source-word copy)")
    ev.add_argument("--name", help="an ensemble's run folder for its outputs (default: ensemble-<A>+<B>)")

    cmp_ = sub.add_parser("compare", help="runs side by side: scores, confidence intervals, paired significance")
    cmp_.add_argument("runs", nargs="*", help="run names or folders (default: every run)")
    cmp_.add_argument("--split", choices=["test", "dev"], default="test")
    cmp_.add_argument("--baseline", help="the run the others are compared with (default: the first)")
    cmp_.add_argument("--paired", choices=["bs", "ar"], default="bs",
                      help="paired bootstrap resampling (default) or approximate randomization")
    cmp_.add_argument("--samples", type=int, default=0, help="resamples (bs, default 1000) or trials (ar, default 10000)")
    cmp_.add_argument("--seed", type=int, default=12345, help="random seed of the resampling (sacrebleu's default)")
    cmp_.add_argument("--format", choices=["table", "json", "markdown", "latex"], default="table")
    cmp_.add_argument("--ref", help="reference file: compare --hyps files instead of runs (like sacrebleu -i)")
    cmp_.add_argument("--hyps", nargs="+", help="hypothesis files, the first is the baseline")
    cmp_.add_argument("--ref-tokenized", action="store_true", help="--ref and --hyps hold corpus tokens")
    cmp_.add_argument("--evaluate", action="store_true", help="run `mt evaluate` for runs without hypotheses")
    cmp_.add_argument("--force", action="store_true", help="compare even what is not comparable (with a warning)")
    cmp_.add_argument("--plot", help="write dev BLEU / loss curves to this PNG")
    cmp_.add_argument("--x", choices=["epochs", "updates", "minutes"], default="epochs", help="x axis of --plot")

    avg = sub.add_parser("average", help="average the last k epoch checkpoints of a run")
    avg.add_argument("run")
    avg.add_argument("--last", type=int, default=5)
    avg.add_argument("--out", help="output checkpoint (default: <run>/averaged.safetensors)")

    qz = sub.add_parser("quantize", help="dynamic int8 quantization of a run's best checkpoint")
    qz.add_argument("run", help="run name or folder, or a checkpoint file")
    qz.add_argument("--out", help="output checkpoint (default: <run>/int8.safetensors)")

    pr = sub.add_parser("prune", help="magnitude pruning of the weight matrices (stored sparse)")
    pr.add_argument("run", help="run name or folder, or a checkpoint file")
    pr.add_argument("--amount", type=float, required=True,
                    help="fraction of weights to zero (or, --structured, of heads and FFN neurons to remove), e.g. 0.3")
    pr.add_argument("--structured", action="store_true",
                    help="remove whole attention heads and FFN neurons: a smaller, faster dense Transformer")
    pr.add_argument("--scope", choices=["global", "layer"], default="global",
                    help="rank magnitudes over all matrices (global) or within each (layer)")
    pr.add_argument("--finetune-steps", type=int, default=0, help="train N batches with the mask fixed")
    pr.add_argument("--lr", type=float,
                    help="fine-tuning peak learning rate (default: train.lr / 2; warm-up over the first 10%% of "
                         "steps, then a cosine decay to 0)")
    pr.add_argument("--distill", action="store_true",
                    help="fine-tune on the unpruned model's own beam translations of the training set (sequence-level "
                         "distillation; made once and shared with mt distill) instead of the references")
    pr.add_argument("--device", default="cpu")
    pr.add_argument("--out", help="output checkpoint (default: <run>/pruned-<percent>.safetensors)")

    ds = sub.add_parser("distill", help="sequence-level distillation: train a student on teacher translations")
    ds.add_argument("--teacher", required=True, help="teacher run name or folder")
    ds.add_argument("--model", choices=["seq2seq", "transformer"], default="transformer")
    ds.add_argument("--config", help="student TOML config (default: experiments/<model>.toml)")
    ds.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ds.add_argument("--name", help="student run name (default: <model>-distilled-<teacher>)")
    ds.add_argument("--limit", type=int, default=0, help="distill only the first N training sentences")
    ds.add_argument("--epochs", type=int)
    ds.add_argument("--beam", type=int, help="teacher beam size (default: the teacher's decode.beam)")
    ds.add_argument("--device", default="cpu")

    rep = sub.add_parser("compress-report", help="size / BLEU / speed / memory of checkpoints side by side")
    rep.add_argument("rows", nargs="+", metavar="[LABEL=]CHECKPOINT", help="checkpoint files or run names")
    rep.add_argument("--src", help="source file (default: the first checkpoint's corpus split)")
    rep.add_argument("--ref", help="reference file")
    rep.add_argument("--ref-tokenized", action="store_true", help="the --ref file is space-tokenized")
    rep.add_argument("--split", choices=["dev", "test"], default="test")
    rep.add_argument("--speed-lines", type=int, default=500, help="sentences timed for sent/s")
    rep.add_argument("--repeats", type=int, default=3, help="timed passes (the median is reported)")
    rep.add_argument("--threads", default="2,1",
                     help="thread counts to time, comma-separated (default 2,1; 0 = torch's default)")
    rep.add_argument("--json", help="also write the report to this JSON file")
    rep.add_argument("--markdown", help="also write the table in Markdown (speeds × the first row) to this file")

    exp = sub.add_parser("export", help="export a Transformer run for another inference engine")
    exp.add_argument("run", help="run name or folder")
    exp.add_argument("--format", choices=["ctranslate2"], default="ctranslate2")
    exp.add_argument("--out", required=True, help="output folder")
    exp.add_argument("--quantization", choices=["int8", "int8_float32", "int16", "float16", "bfloat16"],
                     help="weight type in the export (default: float32)")

    att = sub.add_parser("attention", help="plot the attention of one translated sentence as a heatmap")
    _add_model_source(att)
    att.add_argument("sentence", help="an English sentence")
    att.add_argument("--out", required=True, help="PNG file to write")
    att.add_argument("--layer", type=int, help="decoder layer, 1 = first (default: the last)")
    att.add_argument("--head", type=_head, default="mean", help="head number from 1, or mean (default)")
    att.add_argument("--self-attention", action="store_true", help="decoder self-attention instead")
    att.add_argument("--beam", type=int, help="beam size for the translation (default: the run's)")

    srv = sub.add_parser("serve", help="HTTP translation server and web page (needs mt-enja[serve])")
    _add_model_source(srv, ensemble=True)
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--beam", type=int, help="default beam of requests (default: the run's decode.beam)")
    srv.add_argument("--alpha", type=float, help="length penalty α (default: the run's decode.alpha)")
    srv.add_argument("--max-batch-sentences", type=int, default=64, help="sentences per decoding batch, across requests")
    srv.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    srv.add_argument("--max-sentences", type=int, default=64, help="sentences per request")
    srv.add_argument("--max-chars", type=int, default=1000, help="characters per sentence")
    srv.add_argument("--queue-size", type=int, default=256, help="requests waiting before 503")
    srv.add_argument("--timeout", type=float, default=30.0, help="seconds per request before 504")
    srv.add_argument("--no-batching", action="store_true", help="one request per decoding batch")
    srv.add_argument("--no-split", action="store_true",
                     help=SPLIT_HELP + "; a text past the model's limit is refused (413); a request's \"split\" overrides")

    bench = sub.add_parser("bench", help="measure training or translation speed").add_subparsers(
        dest="action", required=True)
    bt = bench.add_parser("train", help="training tokens/s, model FLOPs/s, padding, peak RSS")
    bt.add_argument("--model", choices=["seq2seq", "transformer"], default=None)
    bt.add_argument("--config", help="TOML config (default: experiments/<model>.toml)")
    bt.add_argument("--corpus", help="corpus name, folder or TSV file")
    bt.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    bt.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    bt.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    bt.add_argument("--repeats", type=int, default=3, help="timed passes (medians are reported)")
    bt.add_argument("--threads", type=int, default=0, help="torch threads (default: train.threads, else all)")
    bt.add_argument("--json", help="also write the record to this JSON file")
    bs = bench.add_parser("serve", help="mt serve under load (batching on/off) or a soak with bad requests")
    _one_model(bs)
    bs.add_argument("--clients", default="1,4,16,64", help="concurrent clients, comma-separated")
    bs.add_argument("--requests", type=int, default=32, help="requests per client at each client count")
    bs.add_argument("--beam", type=int, default=1, help="beam of every request (default 1: greedy)")
    bs.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    bs.add_argument("--soak", type=int, default=0, help="instead: a soak of this many requests, one in five bad")
    bs.add_argument("--json", help="also write the record to this JSON file")
    bx = bench.add_parser("translate", help="decoding speed, BLEU and memory per engine, or of an ensemble")
    bx.add_argument("--run", action="append",
                    help="run name or folder (default: the most recent run); repeat for an ensemble, measured "
                         "beside each member")
    bx.add_argument("--checkpoint", action="append", help="a checkpoint file instead of a run; repeat for an ensemble")
    bx.add_argument("--weights", type=_weights, help="ensemble weights, e.g. 0.6,0.4 (default: equal)")
    bx.add_argument("--combine", choices=["prob", "logprob"], default="prob", help=COMBINE_HELP)
    bx.add_argument("--alpha", type=float, help="length penalty α (of the ensemble; its members keep their own)")
    bx.add_argument("--engines", default="torch,torch-int8,ct2,ct2-int8", help="comma-separated")
    bx.add_argument("--repeats", type=int, default=3, help="timed passes (medians are reported)")
    bx.add_argument("--threads", type=int, default=2, help="threads per engine")
    bx.add_argument("--limit", type=int, default=0, help="only the first N test sentences")
    bx.add_argument("--json", help="also write the record to this JSON file")
    return parser


def _head(value: str) -> int | str:
    if value == "mean":
        return value
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a head number or mean, got {value!r}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except MTError as e:
        print(f"mt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # a write that no library call turned into an MTError (e.g. stdout on a full disk)
        where = e.filename or "the output"
        print(f"mt: error: cannot write {where}: {e.strerror or e}", file=sys.stderr)
        return 1


def cmd_corpus(args) -> int:
    from mt import corpora

    if args.action == "list":
        print(f"{'sample':22s} tiny raw corpus shipped in corpora/sample (tests, demo)")
        for spec in corpora.CORPORA.values():
            print(f"{spec.name:22s} {spec.description}")
        return 0
    warn = lambda msg: print(f"mt: warning: {msg}", file=sys.stderr)  # noqa: E731
    folder = corpora.fetch(args.name, args.mirror, args.force, warn)
    corpora.validate(folder)
    print(f"{args.name}: {corpora.verification_note(args.name)}; ready in {folder}")
    return 0


def cmd_train(args) -> int:
    from mt import config

    flags = {"data.corpus": args.corpus, "train.epochs": args.epochs, "data.limit": args.limit, "train.seed": args.seed}
    # checked before torch loads (about a second) or any data work: a typo fails at once
    cfg = None if args.resume else config.load(args.model, args.config, args.set, flags)
    from mt import trainer

    log = lambda msg: print(msg, flush=True)  # noqa: E731
    run, summary = trainer.start(cfg, args.name, args.resume, flags, args.set, args.device, log)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done ({summary['stopped']}): best dev BLEU {summary['best_dev_bleu']:.2f} at epoch "
              f"{summary['best_epoch']}; run folder {run}")
    return 0


def cmd_translate(args) -> int:
    from mt import experiments, translate

    if args.engine == "ctranslate2":
        from mt.tools.export_ct2 import CT2Translator

        if not args.ct2_dir:
            raise MTError("--engine ctranslate2 needs --ct2-dir DIR (a folder written by `mt export`)")
        print(f"mt: translating with {args.ct2_dir} (ctranslate2)", file=sys.stderr)
        translator = CT2Translator(args.ct2_dir, args.device)
    else:
        paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
        translator = translate.Translator.from_checkpoints(paths, args.device, args.alpha, args.keep_unk, args.weights,
                                                          args.combine)
        print(f"mt: translating with {translate.describe(paths, translator)}", file=sys.stderr)
    warn = lambda msg: print(f"mt: warning: {msg}", file=sys.stderr)  # noqa: E731
    translate.stream(translator, sys.stdin.buffer, sys.stdout, args.beam, args.nbest, args.tokenized,
                     args.batch_size, warn, split=not args.no_split)
    return 0


def cmd_evaluate(args) -> int:
    from mt import evaluate, experiments, translate

    paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
    eval_set = evaluate.eval_set(paths[0], args.split, args.src, args.ref, args.ref_tokenized)
    translator = translate.Translator.from_checkpoints(paths, args.device, args.alpha, args.keep_unk, args.weights,
                                                          args.combine)
    print(f"mt: evaluating {translate.describe(paths, translator)} on {eval_set.src}", file=sys.stderr)
    out_dir, name = evaluate.output_place(paths, eval_set, derived=bool(args.checkpoint), weights=args.weights,
                                          combine=args.combine, name=args.name)
    scores = evaluate.evaluate(translator, eval_set.src, eval_set.ref, eval_set.ref_tokenized, out_dir, name, args.beam)
    print(evaluate.format_scores(scores))
    print(f"hypotheses and scores written to {out_dir}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from mt import compare, evaluate

    req = compare.Request(args.runs, args.split, args.baseline, args.paired, args.samples, args.seed, args.format,
                          Path(args.ref) if args.ref else None, [Path(h) for h in args.hyps or []], args.ref_tokenized,
                          args.force, Path(args.plot) if args.plot else None, args.x)
    warn = lambda msg: print(f"mt: warning: {msg}", file=sys.stderr)  # noqa: E731
    print(compare.run(req, evaluate.evaluate_run(args.split) if args.evaluate else None, warn))
    if args.plot:
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def cmd_average(args) -> int:
    from mt import experiments
    from mt.train_state import average_run

    out, epochs = average_run(experiments.find_run(args.run), args.last, Path(args.out) if args.out else None)
    print(f"averaged epochs {epochs} into {out}")
    return 0


def cmd_attention(args) -> int:
    from mt import experiments
    from mt.tools.attention_plot import draw_attention
    from mt.translate import Translator

    path = experiments.resolve_checkpoint(args.run, args.checkpoint)
    translator = Translator.from_checkpoint(path, args.device)
    warn = lambda msg: print(f"mt: warning: {msg}", file=sys.stderr)  # noqa: E731
    kind = "self" if args.self_attention else "cross"
    out, _ = draw_attention(translator, path, args.sentence, Path(args.out), args.layer, args.head, kind,
                            args.beam, warn)
    print(f"attention map written to {out}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from mt import experiments
    from mt.tools.export_ct2 import export_ctranslate2

    path = experiments.resolve_checkpoint(args.run, None)
    out = export_ctranslate2(path, Path(args.out), args.quantization)
    print(f"exported {path} to {out} ({args.format}, {args.quantization or 'float32'})")
    return 0


def cmd_quantize(args) -> int:
    from mt import checkpoint as ckpt
    from mt.tools.compress import quantize, resolve_source

    src = resolve_source(args.run)
    tensors, meta = quantize(src)
    out = Path(args.out) if args.out else src.parent / "int8.safetensors"
    ckpt.save(out, tensors, meta)
    q = meta["quantized"]
    print(f"quantized {src} into {out}: {len(q['linear'])} Linear + {len(q['rnn'])} RNN layers int8, "
          f"{out.stat().st_size / 1e6:.2f} MB, weights {q['size_ratio']}x smaller than fp32")
    return 0


def cmd_prune(args) -> int:
    from mt import checkpoint as ckpt
    from mt.tools.compress import prune, resolve_source

    src = resolve_source(args.run)
    log = lambda msg: print(f"mt: {msg}", file=sys.stderr)  # noqa: E731
    if args.distill and not args.finetune_steps:
        raise MTError("--distill chooses what the pruned model is fine-tuned on: give --finetune-steps N too")
    if args.structured:
        from mt.tools.structured import prune_structured

        tensors, meta = prune_structured(src, args.amount, args.finetune_steps, args.lr, args.device, log, args.distill)
        out = Path(args.out) if args.out else src.parent / f"structured-{round(args.amount * 100)}.safetensors"
        ckpt.save(out, tensors, meta)
        s = meta["structured"]
        print(f"pruned {src} into {out}: {s['heads']} heads per attention module, {s['d_ff']} FFN neurons, "
              f"{s['params']:,} parameters (was {s['params_before']:,}), {out.stat().st_size / 1e6:.2f} MB")
        return 0
    tensors, meta = prune(src, args.amount, args.scope, args.finetune_steps, args.lr, args.device, log, args.distill)
    out = Path(args.out) if args.out else src.parent / f"pruned-{round(args.amount * 100)}.safetensors"
    ckpt.save(out, tensors, meta)
    p = meta["pruned"]
    print(f"pruned {src} into {out}: sparsity {p['sparsity']:.4f} of weight matrices "
          f"({p['sparsity_all_params']:.4f} of all parameters; asked {args.amount} {args.scope}), "
          f"{out.stat().st_size / 1e6:.2f} MB, weights {p['size_ratio']}x smaller than fp32")
    return 0


def cmd_distill(args) -> int:
    from mt import experiments
    from mt.tools.distill import distill

    teacher = experiments.find_run(args.teacher)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    run, summary = distill(teacher, args.model, Path(args.config) if args.config else None, args.set,
                           args.name, args.limit, args.epochs, args.beam, args.device, log)
    print(f"done ({summary['stopped']}): student best dev BLEU {summary['best_dev_bleu']:.2f} at epoch "
          f"{summary['best_epoch']}; run folder {run}")
    return 0


def cmd_compress_report(args) -> int:
    import shlex

    from mt import evaluate, files
    from mt.tools import tradeoff

    threads = tradeoff.parse_threads(args.threads)
    rows = [tradeoff.parse_row(r) for r in args.rows]
    eval_set = evaluate.eval_set(rows[0][1], args.split, args.src, args.ref, args.ref_tokenized)
    print(f"mt: measuring {len(rows)} checkpoints on {eval_set.src} at {args.threads} threads", file=sys.stderr)
    log = lambda msg: print(f"mt: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    report = tradeoff.compression_report(rows, eval_set.src, eval_set.ref, eval_set.ref_tokenized, args.speed_lines,
                                         args.repeats, threads, log=log)
    report["command"] = shlex.join(["mt", "compress-report", *args.rows, "--threads", args.threads,
                                    "--split", args.split, "--speed-lines", str(args.speed_lines)])
    for line in tradeoff.format_report(report):
        print(line)
    if args.json:
        tradeoff.write_json(report, Path(args.json))
    if args.markdown:
        files.write_text(Path(args.markdown), "\n".join(tradeoff.format_markdown(report)) + "\n")
    return 0


def cmd_serve(args) -> int:
    from dataclasses import replace

    from mt import experiments, translate

    missing = [m for m in ("fastapi", "uvicorn") if find_spec(m) is None]
    if missing:
        raise MTError(f"mt serve needs FastAPI and uvicorn ({', '.join(missing)} missing): pip install 'mt-enja[serve]'")
    from mt.tools import serve
    paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
    translator = translate.Translator.from_checkpoints(paths, args.device, args.alpha, False, args.weights, args.combine)
    if args.beam:
        translator.decode = replace(translator.decode, beam=args.beam)
    limits = serve.Limits(max_sentences=args.max_sentences, max_chars=args.max_chars,
                          max_batch_sentences=args.max_batch_sentences, max_wait_ms=args.max_wait_ms,
                          queue_size=args.queue_size, timeout_s=args.timeout, batching=not args.no_batching,
                          split=not args.no_split)
    name = "+".join(p.parent.name for p in paths)
    print(f"mt: serving {translate.describe(paths, translator)} on http://{args.host}:{args.port}/", file=sys.stderr)
    serve.serve(translator, name, paths[0], args.host, args.port, limits)
    return 0


def cmd_bench(args) -> int:
    from mt.tools import bench

    if args.action == "serve":
        from mt import experiments
        from mt.tools import bench_serve

        path = experiments.resolve_checkpoint(args.run, args.checkpoint)
        log = lambda msg: print(f"mt: {msg}", file=sys.stderr)  # noqa: E731
        if args.soak:
            record = bench_serve.soak(path, args.soak, threads=args.threads, log=log)
        else:
            clients = [int(c) for c in args.clients.split(",")]
            record = bench_serve.bench_serve(path, clients, args.requests, args.beam, args.threads, log)
        lines = bench_serve.format_serve(record)
    elif args.action == "train":
        cfg = bench.load_config(args.model, args.config, args.set, args.corpus)
        print(f"mt: benchmarking {cfg.model_type} training ({args.warmup} warm-up + {args.repeats} × "
              f"{args.steps} steps)", file=sys.stderr)
        record = bench.bench_train(cfg, args.steps, args.warmup, args.repeats, args.threads)
        lines = bench.format_train(record)
    else:
        from mt import experiments
        from mt.tools.bench_translate import bench_translate, format_translate

        paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        log = lambda msg: print(f"mt: {msg}", file=sys.stderr)  # noqa: E731
        record = bench_translate(paths, engines, args.repeats, args.threads, limit=args.limit, log=log,
                                 weights=args.weights, alpha=args.alpha, combine=args.combine)
        lines = format_translate(record)
    for line in lines:
        print(line)
    if args.json:
        bench.write_json(record, Path(args.json))
    return 0


COMMANDS = {
    "corpus": cmd_corpus, "train": cmd_train, "translate": cmd_translate, "evaluate": cmd_evaluate,
    "compare": cmd_compare, "average": cmd_average, "attention": cmd_attention, "export": cmd_export,
    "quantize": cmd_quantize, "prune": cmd_prune, "distill": cmd_distill, "compress-report": cmd_compress_report,
    "bench": cmd_bench, "serve": cmd_serve,
}
