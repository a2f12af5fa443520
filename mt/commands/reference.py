"""docs/reference.md's commands part, generated from the parser, so it lists every option of every command.

`python -m mt.commands.reference` (or `make reference`) rewrites the part between the two markers and
keeps the hand-written prose around it; `--check` only says whether the file is current (exit 1 if not)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mt import files
from mt.cli import build_parser
from mt.errors import MTError

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
BEGIN = ("<!-- generated from the parser by `make reference` (python -m mt.commands.reference): "
         "edit the commands in mt/commands/, not this part -->")
END = "<!-- end of the generated part -->"


def commands(parser: argparse.ArgumentParser, name: str = "mt", help: str = "") -> list[tuple[str, str, argparse.ArgumentParser]]:
    """Every runnable command as (name, one-line help, its parser), in the order of `mt --help`."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return [(name, help, parser)]
    helps = {a.dest: a.help or "" for a in groups[0]._choices_actions}
    return [leaf for sub, p in groups[0].choices.items() for leaf in commands(p, f"{name} {sub}", helps[sub])]


def _metavar(action: argparse.Action) -> str:
    """The argument's value as --help shows it: METAVAR, {a,b} or NAME ..."""
    if action.choices is not None:
        value = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        value = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if action.nargs == "+":
        return f"{value} [{value} ...]"
    return f"[{value} ...]" if action.nargs == "*" else value


def _argument(action: argparse.Action) -> str:
    flag = ", ".join(action.option_strings)
    if not flag:
        return _metavar(action)
    return flag if action.nargs == 0 else f"{flag} {_metavar(action)}"


def _default(action: argparse.Action) -> str:
    if not action.option_strings:  # a positional: the usage line says whether it may be left out
        return ""
    if action.required:
        return "required"
    if action.nargs == 0 or action.default in (None, [], argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _text(text: str) -> str:
    """Help text as a Markdown table cell: | and <…> would break the table or vanish as HTML."""
    return text.replace("|", "\\|").replace("<", "\\<")


def _usage(name: str, actions: list[argparse.Action]) -> str:
    must = [_argument(a) for a in actions if a.required or not a.option_strings]
    optional = " [options]" if any(a.option_strings and not a.required for a in actions) else ""
    return f"`{' '.join([name, *must])}{optional}`"


def section(name: str, help: str, parser: argparse.ArgumentParser) -> list[str]:
    """One command: its description (else its help), usage and a table of every argument."""
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    lines = [f"### `{name}`", "", _text(parser.description or help), "", _usage(name, actions)]
    if actions:
        lines += ["", "| argument | default | what it does |", "|---|---|---|"]
        for a in actions:
            text = (a.help or "") % {**vars(a), "prog": parser.prog}
            lines.append(f"| `{_argument(a)}` | {_default(a)} | {_text(text)} |")
    return lines + [""]


def render(parser: argparse.ArgumentParser) -> str:
    """The generated part, markers included: an index of the commands, then one section each."""
    leaves = commands(parser)
    lines = [BEGIN, "", "| command | what it does |", "|---|---|"]
    lines += [f"| [`{name}`](#{name.replace(' ', '-')}) | {_text(help)} |" for name, help, _ in leaves]
    lines.append("")
    for leaf in leaves:
        lines += section(*leaf)
    return "\n".join(lines + [END])


def update(text: str, parser: argparse.ArgumentParser) -> str:
    """`text` with its generated part rewritten; the prose around it is kept as it is."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise MTError(f"the reference has no generated part: put the two lines {BEGIN!r} and {END!r} where it goes")
    return text[:start] + render(parser) + text[end + len(END):]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the reference (0), or with --check say whether it is current (0) or stale (1)."""
    ap = argparse.ArgumentParser(prog="python -m mt.commands.reference", description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(REFERENCE), help="the reference page (default: docs/reference.md)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is stale")
    args = ap.parse_args(argv)
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
        new = update(text, build_parser())
    except OSError as e:
        print(f"mt: error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    except MTError as e:
        print(f"mt: error: {path}: {e}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"mt: {path} is stale: run `make reference` (python -m mt.commands.reference)", file=sys.stderr)
        return int(new != text)
    if new != text:
        files.write_text(path, new)
    print(f"{path}: {'rewritten' if new != text else 'already current'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
