"""The `mt` command: parse arguments, call the command's handler, turn errors into one line and an exit code.

Each command group is a module in mt/commands/ whose `add(sub)` declares its arguments, with its handler
right below; options several commands share are declared once in mt/commands/common.py. Handlers import
what they use inside themselves: `mt --help`, `mt corpus list` and argument errors answer without
loading torch (about 2 s), and a tool's optional dependencies load only for it."""

from __future__ import annotations

import argparse
import sys

from mt.commands import attention, bench, check, compare, compress, corpus, evaluate, export, serve, shortlist, train, translate
from mt.errors import MTError

# the order of `mt --help`; compress adds average, quantize, prune, distill and compress-report
GROUPS = (corpus, train, translate, evaluate, check, compare, compress, export, shortlist, attention, serve, bench)


def build_parser() -> argparse.ArgumentParser:
    """The whole `mt` parser; each subcommand's namespace carries its `handler`."""
    parser = argparse.ArgumentParser(prog="mt", description="English→Japanese neural machine translation")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `mt` command: 0 on success, 2 for a user mistake (one line on stderr: a missing file too), 1 for a
    failed write."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except MTError as e:
        print(f"mt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except FileNotFoundError as e:  # a path the user named that is not there (an input, or an output's folder)
        print(f"mt: error: {e.filename or 'a file'}: no such file or directory", file=sys.stderr)
        return 2
    except OSError as e:  # a write that no library call turned into an MTError (e.g. stdout on a full disk)
        where = e.filename or "the output"
        print(f"mt: error: cannot write {where}: {e.strerror or e}", file=sys.stderr)
        return 1
