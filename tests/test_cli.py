"""The command line itself: every command has a handler, help and argument errors stay torch-free, the
reference page lists every option and is current, the default output names the tools choose."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mt.cli import build_parser, main
from mt.commands import reference
from mt.tools.compress import save_compressed

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reference.md"


def test_every_command_has_a_handler():
    leaves = reference.commands(build_parser())
    assert len(leaves) >= 17 and len({name for name, _, _ in leaves}) == len(leaves)
    for name, _, parser in leaves:
        assert callable(parser.get_default("handler")), name


CHILD = """
import contextlib, io, json, sys
from mt.cli import build_parser, main
from mt.commands.reference import commands

runs = [[], *[name.split()[1:] for name, _, _ in commands(build_parser())]]
codes = []
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for args in [*[r + ["--help"] for r in runs], ["train", "--bogus"], ["prune", "r"]]:
        try:
            main(args)
        except SystemExit as e:
            codes.append(e.code)
    main(["corpus", "list"])
print(json.dumps({"codes": codes, "torch": "torch" in sys.modules}))
"""


def test_help_and_argument_errors_do_not_load_torch():
    """`mt --help`, every command's --help, `mt corpus list` and bad arguments answer before torch loads."""
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    helps = len(reference.commands(build_parser())) + 1
    assert result["codes"] == [0] * helps + [2, 2] and result["torch"] is False, result


def _sections(text: str) -> dict[str, str]:
    """The reference page's `### \\`mt ...\\`` sections by command name."""
    parts = re.split(r"^### `(mt [^`]+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_reference_lists_every_option_of_every_command():
    sections = _sections(DOC.read_text(encoding="utf-8"))
    missing = []
    for name, _, parser in reference.commands(build_parser()):
        flags = [f for a in parser._actions if not isinstance(a, argparse._HelpAction) for f in a.option_strings]
        missing += [f"{name} {f}" for f in flags if f"| `{f}" not in sections.get(name, "")]
    assert not missing, f"docs/reference.md lacks {missing}: run `make reference`"


def test_the_reference_is_current():
    text = DOC.read_text(encoding="utf-8")
    assert reference.update(text, build_parser()) == text, "docs/reference.md is stale: run `make reference`"


def test_the_reference_is_rewritten_and_its_prose_kept(tmp_path, capsys):
    stale = tmp_path / "reference.md"
    text = DOC.read_text(encoding="utf-8")
    stale.write_text(text.replace("| `--device DEVICE` | `cpu` | cpu or cuda |\n", "", 1), encoding="utf-8")
    assert reference.main(["--check", str(stale)]) == 1
    assert "is stale: run `make reference`" in capsys.readouterr().err
    assert reference.main([str(stale)]) == 0 and stale.read_text(encoding="utf-8") == text
    assert reference.main(["--check", str(stale)]) == 0
    assert "## Configuration" in text and "## Corpora" in text  # the hand-written prose around the generated part


def test_a_reference_without_its_markers_is_one_clear_line(tmp_path, capsys):
    page = tmp_path / "reference.md"
    page.write_text("# Reference\n", encoding="utf-8")
    assert reference.main([str(page)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no generated part" in err and page.read_text() == "# Reference\n"
    assert reference.main([str(tmp_path / "absent.md")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bench_serve_clients_must_be_numbers(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "serve", "--clients", "1,x"])
    assert e.value.code == 2 and "expected comma-separated whole numbers" in capsys.readouterr().err


@pytest.mark.parametrize("kind, info, name", [("quantized", {}, "int8"), ("pruned", {"amount": 0.3}, "pruned-30"),
                                              ("structured", {"amount": 0.5}, "structured-50")])
def test_compressed_checkpoints_go_beside_their_source(tmp_path, kind, info, name):
    meta = {"compressed_from": str(tmp_path / "run" / "best.safetensors"), kind: info}
    (tmp_path / "run").mkdir()
    assert save_compressed({"model.w": torch.zeros(2)}, meta) == tmp_path / "run" / f"{name}.safetensors"
    assert (tmp_path / "run" / f"{name}.safetensors").is_file()
    out = tmp_path / "elsewhere.safetensors"
    assert save_compressed({"model.w": torch.zeros(2)}, meta, out) == out and out.is_file()
