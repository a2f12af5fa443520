"""`mt serve`: the HTTP translation server and web page (needs mt-enja[serve])."""

from __future__ import annotations

import argparse
from importlib.util import find_spec

from mt.commands import common
from mt.errors import MTError


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt serve`."""
    p = sub.add_parser("serve", help="HTTP translation server and web page (needs mt-enja[serve])",
                       description="HTTP API and web page; requests are batched across users (docs/serving.md).")
    common.model_source(p, ensemble=True)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--beam", type=int, help="default beam of requests (default: the run's decode.beam)")
    p.add_argument("--alpha", type=float, help=common.ALPHA_HELP)
    common.decode_options(p)
    p.add_argument("--max-batch-sentences", type=int, default=64, help="sentences per decoding batch, across requests")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    p.add_argument("--max-sentences", type=int, default=64, help="sentences per request")
    p.add_argument("--max-chars", type=int, default=1000, help="characters per sentence")
    p.add_argument("--queue-size", type=int, default=256, help="requests waiting before 503")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request before 504")
    p.add_argument("--no-batching", action="store_true", help="one request per decoding batch")
    p.add_argument("--no-split", action="store_true",
                   help=common.SPLIT_HELP + "; a text past the model's limit is refused (413); a request's \"split\" overrides")
    p.add_argument("--dropped", action="store_true",
                   help="flag `dropped` too: source words a translation ignores, read by the model (one forced pass "
                        "per content word, after decoding)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import experiments, translate

    missing = [m for m in ("fastapi", "uvicorn") if find_spec(m) is None]
    if missing:
        raise MTError(f"mt serve needs FastAPI and uvicorn ({', '.join(missing)} missing): pip install 'mt-enja[serve]'")
    from mt.tools import serve

    paths = experiments.resolve_checkpoints(args.run, args.checkpoint)
    translator = translate.Translator.from_checkpoints(paths, args.device, False, args.weights, args.combine,
                                                      **common.decode_overrides(args))
    limits = serve.Limits(max_sentences=args.max_sentences, max_chars=args.max_chars,
                          max_batch_sentences=args.max_batch_sentences, max_wait_ms=args.max_wait_ms,
                          queue_size=args.queue_size, timeout_s=args.timeout, batching=not args.no_batching,
                          split=not args.no_split)
    common.note(f"serving {translate.describe(paths, translator)} on http://{args.host}:{args.port}/")
    serve.serve(translator, paths, args.host, args.port, limits, args.dropped)
    return 0
