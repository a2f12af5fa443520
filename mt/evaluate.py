"""`mt evaluate`: translate a test set and score it the way Japanese should be scored."""

from __future__ import annotations

import json
from pathlib import Path

from mt import corpora, files, metrics
from mt.errors import MTError
from mt.text import detokenize_ja
from mt.translate import Translator


def evaluate(translator: Translator, src_path: Path, ref_path: Path, ref_tokenized: bool,
             out_dir: Path, name: str, beam: int | None = None) -> dict:
    """Translate src, score against ref, write hyps-<name>.txt (+ .tok.txt) and eval-<name>.json."""
    sources = list(corpora.read_lines(src_path))
    refs = list(corpora.read_lines(ref_path))
    if len(sources) != len(refs):
        raise MTError(f"line counts differ: {src_path} has {len(sources)}, {ref_path} has {len(refs)}")
    if not sources:
        raise MTError(f"empty test set: {src_path}")
    outputs = [o[0] for o in translator.translate(sources, beam=beam)]
    hyps = [o.text for o in outputs]
    detok_refs = [detokenize_ja(r.split()) for r in refs] if ref_tokenized else refs
    if ref_tokenized:
        scores = metrics.score_all(hyps, detok_refs, [o.tokens for o in outputs], refs)
    else:
        scores = metrics.score_all(hyps, detok_refs)
    scores = {"beam": beam or translator.decode.beam, "src": str(src_path), "ref": str(ref_path), **scores}
    files.write_text(out_dir / f"hyps-{name}.txt", "".join(h + "\n" for h in hyps))
    if ref_tokenized:
        files.write_text(out_dir / f"hyps-{name}.tok.txt", "".join(o.tokens + "\n" for o in outputs))
        files.write_text(out_dir / f"refs-{name}.detok.txt", "".join(r + "\n" for r in detok_refs))
    files.write_text(out_dir / f"eval-{name}.json", json.dumps(scores, indent=1, ensure_ascii=False))
    return scores


def format_scores(scores: dict) -> str:
    lines = []
    if "bleu_tok" in scores:
        lines.append(f"BLEU (corpus tokens) {scores['bleu_tok']:6.2f}  {scores['bleu_tok_signature']}")
    lines.append(f"BLEU (ja-mecab)      {scores['bleu_ja']:6.2f}  {scores['bleu_ja_signature']}")
    lines.append(f"chrF                 {scores['chrf']:6.2f}  {scores['chrf_signature']}")
    return "\n".join(lines)
