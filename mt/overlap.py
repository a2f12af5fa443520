"""`mt corpus overlap A B`: how many lines of one corpus's splits occur in the other's, exactly and normalised.

Counted on the English side (what the training filter matches, mt/heldout.py) and, for information,
on the Japanese side (normalised only: NFKC, no spaces or punctuation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mt.corpora import SPLITS, read_lines, resolve
from mt.heldout import en_key, ja_key


@dataclass(frozen=True)
class Split:
    """One split's lines and keys."""

    lines: list[str]
    en_keys: list[str]
    ja_keys: list[str]

    @classmethod
    def read(cls, folder: Path, split: str) -> Split:
        en, ja = list(read_lines(folder / f"{split}.en")), list(read_lines(folder / f"{split}.ja"))
        return cls([line.strip() for line in en], [en_key(e) for e in en], [ja_key(j) for j in ja])


def _splits(corpus: str, mirror: str | None) -> dict[str, Split]:
    folder, _ = resolve(corpus, mirror, training=False)
    return {s: Split.read(folder, s) for s in SPLITS if (folder / f"{s}.en").exists()}


def _count(lines: Split, other: Split) -> dict[str, int]:
    exact, keys, ja = set(other.lines), set(other.en_keys) - {""}, set(other.ja_keys) - {""}
    return {"lines": len(lines.lines), "exact": sum(line in exact for line in lines.lines),
            "normalised": sum(k in keys for k in lines.en_keys), "ja_normalised": sum(k in ja for k in lines.ja_keys)}


def measure(a: str, b: str, mirror: str | None = None) -> list[dict]:
    """Rows: each of A's dev/test in each of B's splits, B's dev/test in A's train, A's train in B's train."""
    corpora = {a: _splits(a, mirror), b: _splits(b, mirror)} if a != b else {a: _splits(a, mirror)}
    pairs = [(a, s, b, t) for s in ("dev", "test") for t in SPLITS if not (a == b and s == t)]
    if a != b:
        pairs += [(b, s, a, "train") for s in ("dev", "test")] + [(a, "train", b, "train")]
    rows = []
    for x, s, y, t in pairs:
        if s in corpora[x] and t in corpora[y]:
            rows.append({"corpus": x, "split": s, "in": y, "in_split": t, **_count(corpora[x][s], corpora[y][t])})
    return rows


def format_rows(rows: list[dict]) -> list[str]:
    """The rows as a table."""
    out = ["lines of                    found in                       lines   exact  normalised       %"
           "  ja normalised",
           "-" * 102]
    for r in rows:
        share = 100 * r["normalised"] / r["lines"] if r["lines"] else 0.0
        out.append(f"{r['corpus'] + ' ' + r['split']:27s} {r['in'] + ' ' + r['in_split']:27s} {r['lines']:8,d} "
                   f"{r['exact']:7,d} {r['normalised']:11,d} {share:6.1f}% {r['ja_normalised']:14,d}")
    out.append("English side: exact = the identical line; normalised = the same after case, spacing, punctuation "
               "and tokenisation (what training removes). ja: the Japanese side, normalised (for information).")
    return out
