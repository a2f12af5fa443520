"""Held-out lines kept out of training: matching keys, the index of every dev/test line, overlap counts.

Two lines match *exactly* when they are the same string (surrounding spaces aside), and *after
normalisation* when their keys are equal: the English key ignores case, spacing, punctuation and
tokenisation ("Don't go, Mr. Tanaka!" = "don 't go mr. tanaka ."), so a pre-tokenized lowercased corpus
and a raw one meet. Training pairs are matched on the English side: a test source seen in training is
the leak (Tatoeba gives one Japanese sentence to many English ones, so a Japanese-side match is often a
different sentence; `overlap` counts it for information).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mt.text import normalize_en

_NON_WORD = re.compile(r"[\W_]+")


def en_key(text: str) -> str:
    """An English line's key: the normalizer's lowercased tokens, letters and digits only, no spaces."""
    return _NON_WORD.sub("", normalize_en(text))


def ja_key(text: str) -> str:
    """A Japanese line's key: NFKC, lowercased, without spaces (segmentation) or punctuation."""
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


@dataclass
class HeldOut:
    """Every held-out English line, by set name (a corpus), exactly and by key."""

    exact: dict[str, set[str]] = field(default_factory=dict)  # line → the sets holding it
    keys: dict[str, set[str]] = field(default_factory=dict)  # key → the sets holding it
    lines: Counter = field(default_factory=Counter)  # set → lines added

    def add(self, name: str, english: Iterable[str]) -> None:
        """Add one set's lines (its dev and test English); lines whose key is empty ("...") never match."""
        self.lines[name] += 0
        for line in english:
            self.lines[name] += 1
            key = en_key(line)
            if key:
                self.exact.setdefault(line.strip(), set()).add(name)
                self.keys.setdefault(key, set()).add(name)

    def match(self, english: str) -> tuple[set[str], set[str]]:
        """(sets holding this line exactly, sets holding its key)."""
        return self.exact.get(english.strip(), set()), self.keys.get(en_key(english), set())


@dataclass
class Removal:
    """What filtering one training stream removed: pairs per held-out set, exact or only by key."""

    seen: int = 0
    kept: int = 0
    by_set: Counter = field(default_factory=Counter)  # set → pairs removed that it holds
    exact_by_set: Counter = field(default_factory=Counter)  # set → of those, identical lines

    @property
    def removed(self) -> int:
        return self.seen - self.kept


def keep_unseen(pairs: Iterable[tuple[str, str]], held: HeldOut, removal: Removal) -> Iterator[tuple[str, str]]:
    """The pairs whose English no held-out set holds (exactly or by key); `removal` counts the others."""
    for en, ja in pairs:
        removal.seen += 1
        exact, keyed = held.match(en)
        if not keyed:
            removal.kept += 1
            yield en, ja
            continue
        removal.by_set.update(keyed)
        removal.exact_by_set.update(exact)

