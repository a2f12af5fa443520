"""The `short` check's calibration: how long a Japanese translation of an English sentence should be.

Length is counted as Japanese characters (width-normalised, no spaces or punctuation) against English
words (normalised tokens holding a letter or digit). Both counts ignore tokenization: raw Japanese,
small_parallel_enja's space-separated tokens and a model's subwords give one count, and English counts
the same raw or pre-tokenized. A least-squares line predicts the characters from the words on a
corpus's training pairs; a translation is `short` below the `percentile` of chars / predicted on those
pairs (so by construction that share of the corpus's own human translations is flagged).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from mt import corpora, files
from mt.errors import MTError
from mt.text import normalize_en

DEFAULT_CORPUS = "small_parallel_enja"  # what `short` is calibrated on when no run names its corpus
PERCENTILE = 2.5  # of chars / predicted on the training pairs: the line below which `short` fires
_NOT_COUNTED = re.compile(r"[\s、。，．・「」『』（）()\[\]!?！？,.…〜\"'“”‘’:;：；]")


def ja_chars(text: str) -> int:
    """Characters of a Japanese sentence, without spaces and punctuation (raw or corpus tokens)."""
    return len(_NOT_COUNTED.sub("", unicodedata.normalize("NFKC", text)))


def en_words(text: str) -> int:
    """Words of an English sentence (raw or tokenized), punctuation not counted."""
    return sum(1 for t in normalize_en(text).split() if any(c.isalnum() for c in t))


@dataclass(frozen=True)
class LengthModel:
    """predicted chars = slope × English words + intercept; `short` below threshold × predicted."""

    slope: float
    intercept: float
    threshold: float
    percentile: float
    pairs: int
    corpus: str

    def predicted(self, words: int) -> float:
        return max(1.0, self.slope * words + self.intercept)

    def ratio(self, src: str, hyp: str) -> float:
        """The hypothesis's characters as a share of what the source predicts."""
        return ja_chars(hyp) / self.predicted(en_words(src))

    def describe(self) -> str:
        return (f"short: hyp chars < {self.threshold:.2f} × predicted (predicted = {self.slope:.2f} × English words "
                f"+ {self.intercept:.2f}; calibrated on {self.corpus} train, {self.pairs:,} pairs, "
                f"{self.percentile:g}th percentile)")


def fit(en: Iterable[str], ja: Iterable[str], corpus: str, percentile: float = PERCENTILE) -> LengthModel:
    """Least-squares line of Japanese chars on English words over the pairs, and its low percentile."""
    xs, ys = [], []
    for src, tgt in zip(en, ja):
        words = en_words(src)
        if words:
            xs.append(words)
            ys.append(ja_chars(tgt))
    if len(xs) < 10 or len(set(xs)) < 2:
        raise MTError(f"{corpus}: too few training pairs ({len(xs)}) to calibrate the `short` check")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    model = LengthModel(slope, my - slope * mx, 0.0, percentile, len(xs), corpus)
    ratios = sorted(y / model.predicted(x) for x, y in zip(xs, ys))
    threshold = ratios[int(percentile / 100 * (len(ratios) - 1))]
    return LengthModel(model.slope, model.intercept, threshold, percentile, len(xs), corpus)


def calibrated(folder: Path, name: str, percentile: float = PERCENTILE) -> LengthModel:
    """`fit` on a corpus folder's train split, cached (recomputed when a train file changes)."""
    paths = [folder / "train.en", folder / "train.ja"]
    stamp = json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in paths] + [percentile])
    cache = corpora.cache_root() / "checks" / f"length-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.json"
    if cache.exists():
        try:
            return LengthModel(**json.loads(cache.read_text(encoding="utf-8")))
        except (TypeError, ValueError):
            pass  # an older or damaged cache file: fit again
    model = fit(corpora.read_lines(paths[0]), corpora.read_lines(paths[1]), name, percentile)
    files.write_text(cache, json.dumps(asdict(model)))
    return model


def _offline(name: str) -> bool:
    """Can a registered corpus be had without the network (a mirror, or already in the cache)?"""
    mirror = os.environ.get("MT_CORPUS_MIRROR")
    if mirror and (Path(mirror) / name).is_dir():
        return True
    return all((corpora.cache_root() / "corpora" / name / f).exists() for f in corpora.CORPORA[name].sha256)


def length_model(corpus: str | None, explicit: bool = False) -> tuple[LengthModel | None, str | None]:
    """(calibration, None) on `corpus`, else on small_parallel_enja when it is at hand; else (None, why not).
    An `explicit` corpus (--corpus) that cannot be read is an error; a run's corpus that cannot falls back."""
    for name in ([corpus] if corpus else []) + ([DEFAULT_CORPUS] if not explicit and corpus != DEFAULT_CORPUS else []):
        if name in corpora.CORPORA and not _offline(name) and not explicit:
            continue  # never a silent download in the middle of a check
        try:
            folder, _ = corpora.resolve(name)
        except MTError:
            if explicit:
                raise
            continue
        return calibrated(folder, name), None
    return None, (f"no corpus to calibrate on ({corpus or DEFAULT_CORPUS} not at hand): give --corpus or --run, "
                  f"or set MT_CORPUS_MIRROR")
