"""`mt export`: a Transformer run for another inference engine (CTranslate2)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add(sub: argparse._SubParsersAction) -> None:
    """Declare `mt export`."""
    p = sub.add_parser("export", help="export a Transformer run for another inference engine",
                       description="Writes a CTranslate2 model folder; `mt translate --engine ctranslate2 --ct2-dir "
                                   "DIR` translates with it.")
    p.add_argument("run", help="run name or folder")
    p.add_argument("--format", choices=["ctranslate2"], default="ctranslate2", help="export format")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quantization", choices=["int8", "int8_float32", "int16", "float16", "bfloat16"],
                   help="weight type in the export (default: float32)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mt import experiments
    from mt.tools.export_ct2 import export_ctranslate2

    path = experiments.resolve_checkpoint(args.run, None)
    out = export_ctranslate2(path, Path(args.out), args.quantization)
    print(f"exported {path} to {out} ({args.format}, {args.quantization or 'float32'})")
    return 0
