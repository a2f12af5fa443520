"""`mt corpus list`, `mt corpus fetch` and `mt corpus overlap`."""

from __future__ import annotations

import argparse

from mt.commands.common import warn


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt corpus {list,fetch,overlap}`."""
    corpus = sub.add_parser("corpus", help="list or fetch corpora").add_subparsers(dest="action", required=True)
    corpus.add_parser("list", help="registered corpora").set_defaults(handler=run_list)
    fetch = corpus.add_parser("fetch", help="download (or copy from a mirror) and verify a corpus")
    fetch.add_argument("name", help="a registered corpus (see mt corpus list)")
    fetch.add_argument("--mirror", help="folder holding <name>/ (default: $MT_CORPUS_MIRROR)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if cached")
    fetch.set_defaults(handler=run_fetch)
    ov = corpus.add_parser("overlap", help="lines of A's dev/test found in B's splits (and B's dev/test in A's train)")
    ov.add_argument("a", help="a registered corpus, or everyday")
    ov.add_argument("b", help="a registered corpus, or everyday")
    ov.add_argument("--mirror", help="folder holding <name>/ (default: $MT_CORPUS_MIRROR)")
    ov.set_defaults(handler=run_overlap)


def run_list(args: argparse.Namespace) -> int:
    from mt import corpora

    print(f"{'sample':22s} tiny raw corpus shipped in corpora/sample (tests, demo)")
    for spec in corpora.CORPORA.values():
        print(f"{spec.name:22s} {spec.description}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from mt import corpora

    folder = corpora.fetch(args.name, args.mirror, args.force, warn)
    corpora.validate(folder)
    print(f"{args.name}: {corpora.verification_note(args.name)}; ready in {folder}")
    return 0


def run_overlap(args: argparse.Namespace) -> int:
    from mt import overlap

    for line in overlap.format_rows(overlap.measure(args.a, args.b, args.mirror)):
        print(line)
    return 0
