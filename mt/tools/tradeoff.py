"""`mt compress-report`: size, quality and speed of several checkpoints side by side.

Each checkpoint is measured in a fresh process (spawned) per thread count, so its peak RSS is its own:
parameters, file size (and the bytes of its model tensors, without optimizer state), test BLEU on
corpus tokens and ja-mecab and chrF (beam and α from the checkpoint's decode config; scored once, in
the first thread count's process), and sentences/s for greedy and beam 5 (median of `repeats` timed
passes over the first `speed_lines` test sentences). Every row's scores are then compared with the
first row's by the `mt compare` machinery (paired bootstrap: Δ, its 95 % interval and p).
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from mt import checkpoint as ckpt
from mt import compare, corpora, metrics
from mt.errors import MTError
from mt.evaluate import decode_and_score, read_pairs
from mt.model import count_parameters
from mt.tools.compress import resolve_source
from mt.translate import Translator

SPEEDS = (("greedy", 1), ("beam5", 5))


def parse_row(text: str) -> tuple[str, Path]:
    """'LABEL=PATH', a checkpoint path or a run name → (label, checkpoint path)."""
    label, sep, target = text.partition("=")
    path = resolve_source(target if sep else text)
    return (label if sep else f"{path.parent.name}/{path.stem}"), path


def parse_threads(text: str) -> list[int]:
    """'2,1' → [2, 1]: the thread counts to time, the first also scores."""
    try:
        out = [int(x) for x in text.split(",")]
    except ValueError:
        out = []
    if not out or any(t < 0 for t in out) or len(set(out)) != len(out):
        raise MTError(f"--threads wants distinct counts ≥ 0 separated by commas (0 = torch's default), got {text!r}")
    return out


def measure(label: str, path: Path, src: Path, ref: Path, ref_tokenized: bool, speed_lines: int,
            repeats: int, threads: int, score: bool = True) -> dict:
    """One row at one thread count, measured in the calling process; `score` also translates the whole
    test set and scores it (and returns the hypotheses, for the significance tests)."""
    if threads:
        torch.set_num_threads(threads)
    translator = Translator.from_checkpoint(path)
    meta = ckpt.read_meta(path)
    row: dict = {"label": label, "checkpoint": str(path), "params": _params(meta),
                 "sparsity": meta.get("pruned", {}).get("sparsity", 0.0), "quantized": bool(meta.get("quantized")),
                 "file_mb": path.stat().st_size / 1e6, "model_mb": ckpt.model_bytes(path) / 1e6}
    if score:
        scored = decode_and_score(translator, read_pairs(src, ref, ref_tokenized))
        row["hyps"] = [o.text for o in scored.outputs]
        row["hyps_tok"] = [o.tokens for o in scored.outputs] if ref_tokenized else None
        scores = {"beam": translator.decode.beam, "alpha": translator.decode.alpha, **scored.scores}
        row.update({k: scores.get(k) for k in ("beam", "alpha", "bleu_tok", "bleu_ja", "chrf",
                                               "bleu_tok_signature", "bleu_ja_signature")})
    lines = list(corpora.read_lines(src))[:speed_lines]
    speed: dict = {"threads": torch.get_num_threads(), "speed_lines": len(lines)}
    for name, beam in SPEEDS:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            translator.translate(lines, beam=beam)
            times.append(time.perf_counter() - t0)
        speed[f"sent_per_s_{name}"] = len(lines) / statistics.median(times)
    speed["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    row["speed"] = speed
    return row


def _params(meta: dict) -> int:
    """Parameters of the architecture (a quantized model counts its float original)."""
    return count_parameters(ckpt.model_from_meta(meta)[0])


def compression_report(rows: list[tuple[str, Path]], src_file: Path, ref_file: Path, ref_tokenized: bool,
                       speed_lines: int = 500, repeats: int = 3, threads: list[int] | tuple[int, ...] = (1,),
                       isolate: bool = True, log=lambda msg: None) -> dict:
    """Measure every (label, checkpoint) row at every thread count (`isolate`: each in its own process,
    so its peak RSS is its own), then test every row's scores against the first row's."""
    for path in [src_file, ref_file, *(p for _, p in rows)]:
        if not Path(path).is_file():
            raise MTError(f"file not found: {path}")
    out = []
    for label, path in rows:
        row: dict = {}
        for i, t in enumerate(threads):
            args = (label, Path(path), Path(src_file), Path(ref_file), ref_tokenized, speed_lines, repeats, t, i == 0)
            if isolate:
                with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                    part = pool.submit(measure, *args).result()
            else:
                part = measure(*args)
            speed = part.pop("speed")
            row = row or part
            row.setdefault("speed", {})[str(t)] = speed
            bleu = part["bleu_tok"] if part.get("bleu_tok") is not None else part.get("bleu_ja")
            log(f"{label}: {t} threads, {speed['sent_per_s_greedy']:.1f} sent/s greedy, "
                f"{speed['sent_per_s_beam5']:.1f} beam 5" + (f"; BLEU {bleu:.2f}" if i == 0 else ""))
        out.append(row)
    report = {"src": str(src_file), "ref": str(ref_file), "threads": list(threads), "speed_lines": speed_lines,
              "repeats": repeats, "rows": out}
    if len(out) > 1:
        _significance(report, ref_file, ref_tokenized)
    for row in out:  # the hypotheses served the tests; the report keeps scores
        del row["hyps"], row["hyps_tok"]
    return report


def _significance(report: dict, ref_file: Path, ref_tokenized: bool) -> None:
    """Each row's Δ against the first row, its 95 % interval and p (paired bootstrap, as `mt compare`)."""
    refs = list(corpora.read_lines(ref_file))
    detok = metrics.detokenized(refs, ref_tokenized)
    systems = [compare.System(r["label"], r["hyps"], detok, "test", r["hyps_tok"], refs if ref_tokenized else None)
               for r in report["rows"]]
    result = compare.compare(systems)
    report["significance"] = {key: s["signature"] for key, s in result["scores"].items()}
    for key, s in result["scores"].items():
        for row, test in zip(report["rows"][1:], s["rows"][1:], strict=True):
            row.setdefault("vs_first", {})[key] = {"delta": test["delta"], "low": test["delta_interval"]["low"],
                                                   "high": test["delta_interval"]["high"], "p": test["p"]}


def _delta(row: dict, key: str = "bleu_tok") -> str:
    test = row.get("vs_first", {}).get(key)
    return f"{test['delta']:+.2f} (p {test['p']:.3f})" if test else "-"


def _speed_cells(report: dict, row: dict, ratio: bool) -> list[str]:
    first = report["rows"][0]["speed"]
    cells = []
    for t in report["threads"]:
        for name, _ in SPEEDS:
            value = row["speed"][str(t)][f"sent_per_s_{name}"]
            cells.append(f"{value:.1f}" + (f" ({value / first[str(t)][f'sent_per_s_{name}']:.2f}×)" if ratio else ""))
    return cells


def _cells(report: dict, row: dict, ratio: bool) -> list[str]:
    score = lambda k: f"{row[k]:.2f}" if row.get(k) is not None else "-"  # noqa: E731
    first_threads = str(report["threads"][0])
    return [row["label"], f"{row['params'] / 1e6:.2f}M", f"{row['sparsity']:.2f}", f"{row['model_mb']:.2f}",
            score("bleu_tok"), _delta(row), score("bleu_ja"), score("chrf"), *_speed_cells(report, row, ratio),
            f"{row['speed'][first_threads]['peak_rss_mb']:.0f}"]


def _heads(report: dict) -> list[str]:
    speeds = [f"{name.replace('beam5', 'beam 5')} sent/s, {t} thread{'s' if t != 1 else ''}"
              for t in report["threads"] for name, _ in SPEEDS]
    return ["model", "params", "sparsity", "weights MB", "BLEU", "Δ BLEU (p)", "BLEU ja-mecab", "chrF", *speeds,
            "peak RSS MB"]


def format_report(report: dict) -> list[str]:
    """A plain-text table: a header line, then one line per row."""
    cells = [_heads(report)] + [_cells(report, r, ratio=False) for r in report["rows"]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in cells]


def format_markdown(report: dict) -> list[str]:
    """The same table in Markdown, speeds also as a multiple of the first row's, then the signatures."""
    heads = _heads(report)
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(_cells(report, r, ratio=True)) + " |" for r in report["rows"]]
    if "significance" in report:
        lines += ["", f"Δ and p against {report['rows'][0]['label']} (paired bootstrap, as `mt compare`): "
                  + "; ".join(f"`{sig}`" for sig in report["significance"].values())]
    return lines


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
