"""Training on several corpora at once, with every dev and test line kept out of training.

A mix (`data.corpus = "a+b"`, plus the corpora of `data.exclude`) becomes one cached corpus folder:
- train: every member's training pairs whose English no held-out set holds (mt/heldout.py: identical,
  or equal after case, spacing, punctuation and tokenisation), interleaved in proportion to the members'
  sizes, so that `--limit N` takes a share of each;
- dev, test: the first member's (its dev BLEU picks the checkpoints; each member's own splits stay
  usable with `mt evaluate --corpus NAME`);
- HELDOUT.json: what was removed, per held-out set and per member (printed by `mt train`, kept in the run).
The held-out sets are the dev and test splits of every member and of every excluded corpus.
Members in different representations meet in the raw one: a pre-tokenized member's Japanese is
detokenized (the run's Japanese segmenter splits every member alike); its English stays as it is, since
the English normalizer is idempotent on it. A single member (with exclusions) keeps its own representation.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from mt.errors import MTError
from mt.files import atomic_folder, count_lines, read_lines
from mt.heldout import HeldOut, Removal, keep_unseen
from mt.text import detokenize_ja

MIX_VERSION = 1  # bump when what a mix folder holds changes
RECORD = "HELDOUT.json"
HELD_SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Source:
    """One corpus of a mix: its name (as configured), split folder, and whether it is pre-tokenized."""

    name: str
    folder: Path
    tokenized: bool

    @property
    def trains(self) -> bool:
        """Has a train split (an evaluation-only corpus has dev and test only)."""
        return (self.folder / "train.en").exists()


def parts(corpus: str) -> list[str]:
    """'a+b' → ['a', 'b']; an empty or repeated member is an error."""
    if Path(corpus).exists():  # a folder or file whose name holds a '+'
        return [corpus]
    names = [p.strip() for p in corpus.split("+")]
    if "" in names:
        raise MTError(f"corpus {corpus!r}: empty name in the mix (write members as a+b)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MTError(f"corpus {corpus!r}: {twice[0]} is in the mix twice")
    return names


def is_tokenized(members: list[Source]) -> bool:
    """A mix keeps the pre-tokenized representation only when one corpus gives all its data."""
    givers = {m for m in members if m.trains} | {members[0]}
    return len(givers) == 1 and members[0].tokenized


def cache_name(members: list[Source], held: list[Source]) -> str:
    """A hash of the members, the held-out corpora and their files (path, size, mtime)."""
    def stamps(s: Source) -> list[str]:
        paths = sorted(s.folder.glob("*.en")) + sorted(s.folder.glob("*.ja"))
        return [s.name, str(s.tokenized)] + [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths]
    blob = json.dumps({"v": MIX_VERSION, "members": [stamps(m) for m in members], "held": [stamps(h) for h in held]})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def build(out: Path, members: list[Source], held: list[Source]) -> dict:
    """Write the mix folder `out` (atomically) and return its removal record."""
    tokenized = is_tokenized(members)
    index = HeldOut()
    for s in members + held:
        index.add(s.name, chain.from_iterable(read_lines(s.folder / f"{split}.en") for split in HELD_SPLITS))
    trainers = [m for m in members if m.trains]
    removals = {m.name: Removal() for m in trainers}
    with atomic_folder(out) as tmp:
        streams = [(count_lines(m.folder / "train.en"), keep_unseen(_pairs(m, "train", tokenized), index,
                                                                    removals[m.name])) for m in trainers]
        _write(tmp, "train", _interleaved(streams))
        for split in HELD_SPLITS:
            _write(tmp, split, _pairs(members[0], split, tokenized))
        record = _record(members, held, index, removals, tokenized)
        (tmp / RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
        if tokenized:
            (tmp / "TOKENIZED").write_text(f"pre-tokenized as {members[0].name}\n")
        (tmp / "DONE").write_text("ok")
    return record


def _pairs(source: Source, split: str, tokenized: bool) -> Iterator[tuple[str, str]]:
    """A member's pairs in the mix's representation."""
    english = read_lines(source.folder / f"{split}.en")
    japanese = read_lines(source.folder / f"{split}.ja")
    for en, ja in zip(english, japanese, strict=True):
        yield en, ja if tokenized or not source.tokenized else detokenize_ja(ja.split())


def _interleaved(streams: list[tuple[int, Iterator[tuple[str, str]]]]) -> Iterator[tuple[str, str]]:
    """Merge streams by relative position (line i of n at (i + ½) / n): every prefix holds a share of each."""
    keyed = [(((i + 0.5) / max(n, 1), k, pair) for i, pair in enumerate(stream)) for k, (n, stream) in enumerate(streams)]
    return (pair for _, _, pair in heapq.merge(*keyed, key=lambda item: item[:2]))


def _write(folder: Path, split: str, pairs: Iterator[tuple[str, str]]) -> None:
    with ExitStack() as stack:
        outs = [stack.enter_context(open(folder / f"{split}.{side}", "w", encoding="utf-8")) for side in ("en", "ja")]
        for en, ja in pairs:
            outs[0].write(en + "\n")
            outs[1].write(ja + "\n")


def _record(members: list[Source], held: list[Source], index: HeldOut, removals: dict[str, Removal],
            tokenized: bool) -> dict:
    """HELDOUT.json: per held-out set, the training pairs removed (identical ones among them); per member, kept."""
    sets = {}
    for s in members + held:
        removed = sum(r.by_set[s.name] for r in removals.values())
        identical = sum(r.exact_by_set[s.name] for r in removals.values())
        sets[s.name] = {"lines": index.lines[s.name], "removed": removed, "identical": identical}
    train = {name: {"pairs": r.seen, "kept": r.kept, "removed": r.removed} for name, r in removals.items()}
    return {"version": MIX_VERSION, "members": [m.name for m in members], "exclude": [h.name for h in held],
            "dev_test": members[0].name, "tokenized": tokenized, "held_out": sets, "train": train,
            "removed": sum(t["removed"] for t in train.values()), "kept": sum(t["kept"] for t in train.values())}


def read_record(folder: Path) -> dict | None:
    """A mix folder's removal record (None for a plain corpus folder)."""
    path = folder / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def describe(record: dict) -> str:
    """The record in one line, as `mt train` prints it."""
    sets = []
    for name, s in record["held_out"].items():
        sets.append(f"{s['removed']:,} in {name}'s {s['lines']:,} dev/test lines ({s['identical']:,} identical, "
                    f"{s['removed'] - s['identical']:,} only after normalisation)")
    kept = ", ".join(f"{name} {t['kept']:,}/{t['pairs']:,}" for name, t in record["train"].items())
    pairs = f"{record['removed']:,} pair{'' if record['removed'] == 1 else 's'}"
    return (f"removed from training: {pairs} whose English is held out — {'; '.join(sets)}; "
            f"kept {record['kept']:,} ({kept}); dev and test: {record['dev_test']}'s")
