"""Names (issue 30 §4): a name in the source comes out as a name, never as another word.

A word vocabulary knows the names its corpus is full of (Tom, Tokyo, Japan) and has seen the others a
handful of times: trained on a few lines with *Tanaka*, a model writes スミス or 兄 for him, or drops him.
With `decode.names = "source"` such a name reaches the model as <unk>, which it carries through as it
learned to for every rare word; unknown-word replacement (mt/unk.py) copies the name back, and
`mt.lexicon.fill` writes it in Japanese (`render`).

- **A name** is a word written with a capital letter that is not its sentence's first word (the
  sentence splitter runs first, so every sentence of a line has its own first word), and that is rare in
  the source vocabulary: not among its `FREQUENT` most frequent words (the vocabulary is sorted by
  count). Frequent names stay with the model, which translates them well (Tokyo → 東京, Japan → 日本);
  days and months are words, not names. A sentence's first word is a name only where a dictionary
  says so: JMdict has no English word for it and JMnedict has the name (*Emily lives in London*).
- **Lost**: a translation has lost a name if none of the ways to write it is in the output: as the user
  wrote it, or a JMnedict form or reading of two or more characters. Only such sentences
  are decoded again with the names masked, so a name the model got right keeps its translation.
- **Titles** the vocabulary lacks become one it has: *Mrs.* and *Ms.* → *Mr.* (all さん in
  Japanese), *Dr.* → *doctor*; otherwise they would be copied as "Mrs.".
- **Rendering**, with JMnedict (in jamdict-data, the `dict` extra), from the name entries glossed as the
  word or a long-vowel spelling of it (Kato, Katou, Katō): the form, if they have only one (Sapporo → 札幌,
  Emily → エミリー); else a katakana form of a person's name, the foreign name's usual writing (Maria →
  マリア, not one of its 90 kanji forms); else, among the forms (of two or more characters: 雪 is a
  word before it is a name) of their most common reading, the one the training corpus uses most (the
  target vocabulary is sorted by count: Tanaka → 田中); else that reading in katakana (Kimura → キムラ:
  JMnedict lists 23 ways to write it, and choosing one would be a guess). A word JMnedict lacks stays as
  written.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from mt.sentences import split_sentences
from mt.vocab import UNK

FREQUENT = 2000  # names outside a vocabulary's 2,000 most frequent words go through as <unk> (chosen, not swept)
TITLES = {"mrs.": "mr.", "ms.": "mr.", "dr.": "doctor"}  # not "miss": a verb first, in every vocabulary
CALENDAR = set("monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
               "august september october november december".split())  # capitalised, but words, not names
_WORD = re.compile(r"[a-z]+")
_HIRAGANA = re.compile(r"[\u3041-\u3096]")


def written_as(word: str, raw: str) -> str | None:
    """How the user wrote the lowercase source word `word` in `raw`: the first occurrence, None if absent."""
    m = re.search(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", raw, re.IGNORECASE)
    return m.group(0) if m else None


def is_first_word(written: str, raw: str) -> bool:
    """Is `written` (its first whole-word occurrence in `raw`) a sentence's first word: the line's, or one after
    . ! ? (a line translated whole, without the sentence splitter, holds several sentences)?"""
    return any(re.match(rf"\W*{re.escape(written)}(?![A-Za-z])", sentence) for sentence in split_sentences(raw))


def capitalised(word: str, raw: str) -> str | None:
    """The word as written, if the user wrote it with a capital letter inside the sentence (a name), else None."""
    written = written_as(word, raw)
    if (not written or written == "I" or not written[0].isupper() or is_first_word(written, raw)
            or word in CALENDAR):
        return None
    return written


def name_in(word: str, raw: str, first_is_name: Callable[[str], bool] | None = None) -> str | None:
    """The name as written if `word` is one (`capitalised`), or if it is the sentence's capitalised first
    word and `first_is_name(written)` says so (with JMdict: no English word, but a JMnedict name)."""
    if written := capitalised(word, raw):
        return written
    written = written_as(word, raw)
    if (written and first_is_name and written[0].isupper() and written != "I" and word not in CALENDAR
            and first_is_name(written)):
        return written
    return None


def titles(tokens: list[str], known: Callable[[str], bool]) -> list[str]:
    """Source tokens with the titles the vocabulary lacks replaced by one it has (TITLES)."""
    return [TITLES[t] if t in TITLES and not known(t) and known(TITLES[t]) else t for t in tokens]


def mask(tokens: Sequence[str], ids: list[int], raw: str, frequent: int = FREQUENT,
         first_is_name: Callable[[str], bool] | None = None) -> list[int]:
    """Source ids with every rare name (see the module docstring) replaced by <unk>; `ids[k]` encodes `tokens[k]`."""
    out = list(ids)
    for k, (token, i) in enumerate(zip(tokens, ids)):
        if i >= frequent and _WORD.fullmatch(token) and name_in(token, raw, first_is_name):
            out[k] = UNK
    return out


def katakana(kana: str) -> str:
    """Hiragana → katakana (たなか → タナカ); other characters unchanged."""
    return _HIRAGANA.sub(lambda m: chr(ord(m.group(0)) + 0x60), kana)


def spellings(written: str) -> list[str]:
    """A romanised name and its long-vowel spellings, as JMnedict may gloss it: Kato → Katou, Katō."""
    out = [written]
    if written.endswith("o"):
        out.append(written + "u")
    if "o" in written[1:]:
        out.append(written[0] + written[1:].replace("o", "ō"))
    return out


PERSON = {"fem", "masc", "given", "person", "surname"}  # JMnedict name types of a person
_KATAKANA = re.compile(r"[\u30a1-\u30fc]+")

Candidate = tuple[str | None, str, bool]  # JMnedict entry: kanji form or None, kana form, a person's name?


def render(candidates: list[Candidate], rank: Callable[[str], int | None]) -> str | None:
    """A name's Japanese from its JMnedict entries by the rule in the module docstring; `rank(form)` is the
    form's place in the target vocabulary (None: not in it)."""
    if not candidates:
        return None
    forms = list(dict.fromkeys(kanji or kana for kanji, kana, _ in candidates))
    if len(forms) == 1:
        return forms[0]
    foreign = Counter(kana for kanji, kana, person in candidates if person and not kanji and _KATAKANA.fullmatch(kana))
    if foreign:
        return foreign.most_common(1)[0][0]
    reading = Counter(katakana(kana) for _, kana, _ in candidates).most_common(1)[0][0]
    ours = {kanji or kana for kanji, kana, _ in candidates if katakana(kana) == reading}
    ranked = sorted((r, f) for f in ours if len(f) > 1 and (r := rank(f)) is not None)
    return ranked[0][1] if ranked else reading


def forms(candidates: list[Candidate], written: str) -> set[str]:
    """Every way an output may write the name: as the user did, each JMnedict form, each reading in katakana;
    forms of two or more characters only (会 or 森 in an output is a word far more often than *Ai* or *Mori*),
    unless the name has one form (then `render` writes it)."""
    one = len({kanji or kana for kanji, kana, _ in candidates}) == 1
    return {written} | {f for kanji, kana, _ in candidates for f in (kanji, kana, katakana(kana))
                        if f and (one or len(f) > 1)}
