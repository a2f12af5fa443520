"""Checks that need no reference: per line, the flags that say a translation should not be trusted as is.

    untranslated  Latin-script words left in the Japanese (acronyms, units, the source's own names and an
                  allow-list excepted), and <unk>
    number        a number of the source (digits, words, times, prices, ordinals, dates) missing or different in
                  the output (mt/numbers.py normalises both sides)
    repeat        the output repeats itself (a unit three times in a row, 6+ characters twice, a 3-character stretch
                  with a kanji or digit three times, a kanji-led stretch twice with at most 2 characters
                  between) where the source repeats no word
    short         the output is much shorter than the source predicts (mt/lengths.py: calibrated on a corpus)
    unknown       source words outside the model's vocabulary (when a model is given)
    dropped       content words of the source the translation ignores: the model finds the translation likelier
                  with the word deleted from the source (when a model that reads raw Japanese is given and the
                  check is asked for: mt/dropped.py)
    readback      content words of the source a ja→en model cannot read back from the translation: their
                  log-probability given the translation (and the English before them) is below READBACK_BELOW
                  (when a reverse model is given: mt/reverse.py)

Hypotheses may be raw Japanese or space-separated corpus tokens; sources raw or tokenized English.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

from mt import corpora
from mt.errors import MTError
from mt.lengths import LengthModel, en_words, length_model
from mt.numbers import said, unmatched
from mt.text import detokenize_ja, normalize_en

FLAGS = ("untranslated", "number", "repeat", "short", "unknown", "dropped", "readback")
IGNORED_BELOW = 0.0  # Δ (nats) under which a source word counts as ignored: the translation is likelier without it
# log p (nats) of a source word read back by the ja→en model under which the translation does not say it. Calibrated
# on human translations with experiments/everyday-ja-en.toml's model: the lowest word of a line falls under it on 30 of
# small_parallel_enja dev's 500 lines, 92 of tatoeba_jpn_eng dev's 877 (7 % of both) and 16 of everyday dev's 163.
READBACK_BELOW = -10.0
Erasure = Callable[[Sequence[str], Sequence[str]], list[list[tuple[str, float]]]]  # (srcs, hyps) → per line (word, Δ)


@dataclass(frozen=True)
class Flag:
    """One check that fired on a line, and what it found."""

    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name} ({self.detail})"


@dataclass(frozen=True)
class SourceVocab:
    """A model's source side: how it tokenizes a sentence, and the tokens it knows."""

    tokenize: Callable[[str], list[str]]
    known: Collection[str]


@dataclass(frozen=True)
class Checker:
    """What the checks need beyond the two sentences; a flag whose input is missing is skipped, with why."""

    length: LengthModel | None = None
    vocab: SourceVocab | None = None
    allow: frozenset[str] = frozenset()  # lowercased words kept in Latin script
    skipped: dict[str, str] = field(default_factory=dict)  # flag → why it is not checked
    erasure: Erasure | None = None  # a model reading the pairs, for `dropped` (mt/dropped.py)
    ignored_below: float = IGNORED_BELOW  # `dropped`: Δ under which a word counts as ignored
    reader: Erasure | None = None  # a ja→en model reading the source back, for `readback`: per line (word, log p)
    readback_below: float = READBACK_BELOW  # `readback`: log p under which a word counts as not said

    def check(self, src: str, hyp: str) -> list[Flag]:
        return check_lines([src], [hyp], self)[0]

    def checked(self) -> list[str]:
        """The flags this checker can raise: `short` needs a calibration, `unknown` a vocabulary, `dropped` a model."""
        return [f for f in FLAGS if (f != "short" or self.length) and (f != "unknown" or self.vocab)
                and (f != "dropped" or self.erasure) and (f != "readback" or self.reader)]


def checker(corpus: str | None = None, vocab: SourceVocab | None = None, allow: frozenset[str] = frozenset(),
            explicit: bool = False) -> Checker:
    """A Checker calibrated on `corpus` (see length_model), with the model's vocabulary when there is one."""
    length, why = length_model(corpus, explicit)
    skipped = {"short": why} if why else {}
    if vocab is None:
        skipped["unknown"] = "no model given (--run or --checkpoint)"
    skipped["dropped"] = "no model given (--run or --checkpoint)" if vocab is None else "not asked for (--dropped)"
    skipped["readback"] = "no ja→en model given (--reverse RUN)"
    return Checker(length, vocab, allow, skipped)


# -- untranslated ------------------------------------------------------------------------------

# written in Latin script in ordinary Japanese (small_parallel_enja lowercases them: ｃｄ, ｕｆｏ, ｎａｓａ)
ACRONYMS = frozenset("cd dvd tv nhk ufo sos dj ol cm sf nasa ntt atm pc ok usb dna os id ai gps sns bgm pr jr jal "
                     "ana bbc cnn fbi cia un eu usa uk nato ibm ceo pta qr tgv vip wc pdf faq sf cpu it ssh www "
                     "email e-mail".split())
UNITS = frozenset("km kg cm mm m g mg l ml dl kl t kb mb gb tb hz khz mhz ghz kw kwh w v ha am pm a.m p.m".split())
_L = "A-Za-zÀ-ÖØ-öø-ÿ"  # Latin letters, accented ones too (café)
_LATIN = re.compile(rf"<unk>|[{_L}](?:[{_L}0-9]|[.'@/-](?=[{_L}0-9]))*")
_SOURCE_WORD = re.compile(rf"[{_L}0-9](?:[{_L}0-9]|[.'@/-](?=[{_L}0-9]))*")


def _kept(word: str, source_words: set[str], allow: frozenset[str]) -> bool:
    """A Latin word that belongs in Japanese: a letter, an acronym, a unit, allowed, or the user's own name."""
    if word == "<unk>":
        return False
    low = word.lower()
    if len(word) == 1 or word.isupper() or low in ACRONYMS or low in UNITS or low in allow:
        return True
    return word in source_words and (word != low or not word.isalpha())  # Tom, iPad, info@example.com


def untranslated(src: str, hyp: str, allow: frozenset[str] = frozenset()) -> Flag | None:
    """Latin-script words in the Japanese that are not kept on purpose."""
    source_words = set(_SOURCE_WORD.findall(unicodedata.normalize("NFKC", src)))
    text = unicodedata.normalize("NFKC", detokenize_ja(hyp.split()))
    left = list(dict.fromkeys(w for w in _LATIN.findall(text) if not _kept(w, source_words, allow)))
    return Flag("untranslated", ", ".join(left)) if left else None


# -- number ------------------------------------------------------------------------------------

def number(src: str, hyp: str) -> Flag | None:
    """Numbers of the source that the output lacks (→ missing) or says otherwise (→ the output's number), and a
    month or clock time the output adds to a source that has numbers (10月３日 → ５月５日から１０月３日; on
    references: 2 lines of small_parallel_enja train's 50,000, none of tatoeba_jpn_eng dev and test or everyday)."""
    missing, extra = unmatched(src, hyp)
    parts = [f"{said(n)} → {said(e) if e else 'missing'}" for n, e in zip_longest(missing, extra[: len(missing)])]
    parts += [f"{said(e)} added" for e in extra[len(missing):] if e.kind in ("month", "time")]
    return Flag("number", ", ".join(parts)) if parts else None


# -- repeat ------------------------------------------------------------------------------------

_PUNCT = re.compile(r"[\s、。，．・「」『』（）()!?！？,.…〜\"']")
_CONTENT = re.compile(r"[\u4e00-\u9fff\u30a0-\u30ffA-Za-z0-9]")  # kanji, katakana, Latin, digits
_LETTER = re.compile(r"[\u4e00-\u9fff\u30a1-\u30faA-Za-z]")
_TANDEM = re.compile(r"(.{1,8}?)\1{2,}")  # a unit three or more times in a row: 私は私は私は
LONG_REPEAT = 6  # characters: on small_parallel_enja train, 5 of 50,000 references repeat this much
# Calibrated on the 94,917 references of small_parallel_enja train and tatoeba_jpn_eng whose English repeats no word:
THRICE = 3  # a 3-character stretch with a kanji or digit said this often (31日の31日は31日): 1 reference of 94,917
_KANJI_OR_DIGIT = re.compile(r"[\u4e00-\u9fff\d]")
_KANJI = re.compile(r"[\u4e00-\u9fff]")  # a stretch led by one, said again at once (飲みすぎて飲みすぎる): 19 of 94,917
_STOP = frozenset("the and but for with are was were been you she they him her them your his its our their this "
                  "that these those not does did have has had will would can could shall should may might must "
                  "there here what who when where why how than then very too".split())


# words a translation may leave unsaid without losing content: light verbs, the stems of contractions (their
# negation, 't, is a content word of its own), reflexives, quantifiers and linking words
_LIGHT = frozenset("""don doesn didn isn aren wasn weren won wouldn couldn shouldn haven hasn hadn mustn ca
get gets got getting make makes made making take takes took taken give gives gave given come comes came coming
go goes going went gone put puts let lets keep kept one ones thing things something anything nothing everything
time out off down around like need needs way lot lots himself herself myself yourself themselves itself ourselves
because while since though although until unless whether also just back away much many want wants wanted
about from into over under after before some any all each every more most only own same other such again ever
still even really please yes okay well""".split())
NEGATIONS = frozenset("not n't 't never no nobody none nor neither".split())


def content_word(word: str) -> bool:
    """A source word whose meaning a translation must carry (for `dropped`): a negation, or an alphabetic word of
    three letters or more that is no function word (_STOP) and no light word (_LIGHT)."""
    word = word.lower()
    return word in NEGATIONS or (word.isalpha() and len(word) > 2 and word not in _STOP and word not in _LIGHT)


def _source_repeats(src: str) -> bool:
    """Does the English itself repeat (no, no, no · get back, get back · people kill people)?"""
    words = [t for t in normalize_en(src).split() if t.isalpha()]
    content = [w for w in words if len(w) > 2 and w not in _STOP]
    return len(content) != len(set(content)) or any(a == b for a, b in zip(words, words[1:]))


def _long_repeat(text: str) -> str | None:
    """A stretch of LONG_REPEAT characters, with a content character, that occurs twice."""
    for i in range(len(text) - LONG_REPEAT + 1):
        piece = text[i: i + LONG_REPEAT]
        if _CONTENT.search(piece) and text.find(piece, i + LONG_REPEAT) >= 0:
            return piece
    return None


def _cuts_a_number(text: str, start: int, end: int) -> bool:
    """Does text[start:end] begin or end inside a run of digits (000 of 1000, 号室10 of 号室103), or hold only
    digits? Numbers count as repeated only whole: 1,000円、2,000円、3,000円 repeats nothing."""
    inside = (0 < start and text[start - 1].isdigit() and text[start].isdigit()) or \
        (end < len(text) and text[end - 1].isdigit() and text[end].isdigit())
    return inside or text[start:end].isdigit()


def _thrice(text: str) -> str | None:
    """A stretch of 3 characters with a kanji or digit in it that occurs three times, apart (31日 … 31日 … 31日)."""
    for i in range(len(text) - 2):
        piece = text[i: i + 3]
        if not _KANJI_OR_DIGIT.search(piece) or _cuts_a_number(text, i, i + 3):
            continue
        at = [m.start() for m in re.finditer(re.escape(piece), text)]
        if sum(not _cuts_a_number(text, a, a + 3) for a in at) >= THRICE:
            return piece
    return None


def _near(text: str) -> str | None:
    """A stretch of 4–8 characters led by a kanji, said again at most 2 characters later (飲みすぎて飲みすぎる)."""
    for i, c in enumerate(text):
        if not _KANJI.match(c):
            continue
        for size in range(4, 9):
            piece, end = text[i: i + size], i + size
            if len(piece) < size or _cuts_a_number(text, i, end):
                break
            for gap in range(3):
                again = end + gap
                if text[again: again + size] == piece and not _cuts_a_number(text, again, again + size):
                    return piece
    return None


def repeat(src: str, hyp: str) -> Flag | None:
    """The output repeats a stretch where the source repeats nothing (characters: tokenization-independent)."""
    text = _PUNCT.sub("", unicodedata.normalize("NFKC", hyp))
    tandem = next((m[0] for m in _TANDEM.finditer(text) if _LETTER.search(m[1])), None)
    found = tandem or _long_repeat(text) or _thrice(text) or _near(text)
    if not found or _source_repeats(src):
        return None
    return Flag("repeat", found)


# -- short, unknown ----------------------------------------------------------------------------

def short(src: str, hyp: str, length: LengthModel) -> Flag | None:
    """The output is shorter than `length` allows for this source."""
    if not en_words(src):
        return None
    ratio = length.ratio(src, hyp)
    return Flag("short", f"{ratio:.2f} of predicted") if ratio < length.threshold else None


def unknown(src: str, vocab: SourceVocab) -> Flag | None:
    """Source tokens the model does not know (it sees them as <unk>)."""
    words = list(dict.fromkeys(t.replace("▁", "") for t in vocab.tokenize(src) if t not in vocab.known))
    words = [w for w in words if w]
    return Flag("unknown", ", ".join(words)) if words else None


def dropped(deltas: list[tuple[str, float]], below: float = IGNORED_BELOW) -> Flag | None:
    """The source's content words (word, Δ) the translation ignores: Δ < `below` (mt/dropped.py)."""
    ignored = list(dict.fromkeys(w for w, d in deltas if d < below))
    return Flag("dropped", ", ".join(ignored)) if ignored else None


def readback(words: list[tuple[str, float]], below: float = READBACK_BELOW) -> Flag | None:
    """The source's content words (word, log p) the reverse model cannot read back: log p < `below`."""
    unsaid = list(dict.fromkeys(w for w, lp in words if lp < below))
    return Flag("readback", ", ".join(unsaid)) if unsaid else None


# -- lines, totals, report ---------------------------------------------------------------------

def check_line(src: str, hyp: str, length: LengthModel | None = None, vocab: SourceVocab | None = None,
               allow: frozenset[str] = frozenset(), deltas: list[tuple[str, float]] | None = None,
               below: float = IGNORED_BELOW, read: list[tuple[str, float]] | None = None,
               read_below: float = READBACK_BELOW) -> list[Flag]:
    """Every flag that applies to one source line and its translation; an empty source has none. `deltas`:
    the line's erasure reading (mt/dropped.py), for `dropped`; `read`: its words read back (mt/reverse.py)."""
    if not src.strip():
        return []
    found = [untranslated(src, hyp, allow), number(src, hyp), repeat(src, hyp),
             short(src, hyp, length) if length else None, unknown(src, vocab) if vocab else None,
             dropped(deltas, below) if deltas is not None and hyp.strip() else None,
             readback(read, read_below) if read else None]
    return [f for f in found if f is not None]


def erasures(srcs: Sequence[str], hyps: Sequence[str], checker: Checker) -> list[list[tuple[str, float]]] | None:
    """Each line's (word, Δ) as the checker's model reads them, in one batched pass; None without a model."""
    return checker.erasure(srcs, hyps) if checker.erasure else None


def readings(srcs: Sequence[str], hyps: Sequence[str], checker: Checker) -> list[list[tuple[str, float]]] | None:
    """Each line's (word, log p) as the checker's reverse model reads the source back; None without one."""
    return checker.reader(srcs, hyps) if checker.reader else None


def check_lines(srcs: Sequence[str], hyps: Sequence[str], checker: Checker,
                deltas: Sequence[list[tuple[str, float]] | None] | None = None,
                read: Sequence[list[tuple[str, float]] | None] | None = None) -> list[list[Flag]]:
    """Each line's flags; a checker with a model reads all the lines' erasures (and a reverse model all their
    read-backs) in one batched pass, or takes them (`deltas`, `read`) read already."""
    if len(srcs) != len(hyps):
        raise MTError(f"line counts differ: {len(srcs)} sources, {len(hyps)} translations")
    if deltas is None:
        deltas = erasures(srcs, hyps, checker) or [None] * len(srcs)
    if read is None:
        read = readings(srcs, hyps, checker) or [None] * len(srcs)
    return [check_line(s, h, checker.length, checker.vocab, checker.allow, d, checker.ignored_below, r,
                       checker.readback_below) for s, h, d, r in zip(srcs, hyps, deltas, read)]


def totals(flags: Sequence[list[Flag]], checked: Sequence[str] = FLAGS) -> dict[str, int]:
    """Lines carrying each checked flag."""
    return {name: sum(any(f.name == name for f in line) for line in flags) for name in checked}


def report(srcs: Sequence[str], hyps: Sequence[str], checker: Checker) -> dict:
    """`mt check --json`: every line's flags (1-based line numbers), totals, the calibration, what was skipped;
    with `dropped`, each line's content words and their Δ ("erasure") and the threshold; with `readback`, each
    line's words and their log p read back ("readback") and its threshold."""
    deltas, read = erasures(srcs, hyps, checker), readings(srcs, hyps, checker)
    flags = check_lines(srcs, hyps, checker, deltas, read)
    lines = [{"line": n, "flags": [f.name for f in fl], "details": {f.name: f.detail for f in fl}, "src": s, "hyp": h}
             for n, (s, h, fl) in enumerate(zip(srcs, hyps, flags), 1)]
    if deltas is not None:
        for line, d in zip(lines, deltas):
            line["erasure"] = [[w, round(x, 3)] for w, x in d]
    if read is not None:
        for line, r in zip(lines, read):
            line["readback"] = [[w, round(x, 3)] for w, x in r]
    return {"lines": lines, "totals": totals(flags, checker.checked()),
            "short": checker.length.describe() if checker.length else None, "skipped": dict(checker.skipped),
            **({"dropped_below": checker.ignored_below} if deltas is not None else {}),
            **({"readback_below": checker.readback_below} if read is not None else {})}


# a judgement's cause (docs/everyday-judgement.tsv) that each flag is meant to catch
CAUSES = {"untranslated": ("untranslated",), "number": ("number",), "repeat": ("repetition",), "dropped": ("dropped",),
          "readback": ("dropped", "wrong word", "inverted")}
COLUMNS = {"readback": "dropped"}  # a reading with no column of a flag's own: the one it is scored against


def read_labels(path: Path) -> dict[str, dict[int, bool]]:
    """--labels TSV: a human reading of the same lines, with a `line` column and, per flag, either a yes/no
    column named after it (`readback`, without one: the `dropped` column) or a `cause` column (a judgement: one of
    the flag's CAUSES is that line's main fault)."""
    if not path.is_file():
        raise MTError(f"file not found: {path}")
    rows = [r.split("\t") for r in corpora.read_lines(path) if r.strip()]
    if not rows or "line" not in rows[0]:
        raise MTError(f"{path}: no header with a `line` column")
    head, labels = rows[0], {}
    for n, row in enumerate(rows[1:], 2):
        if len(row) < len(head):
            row = row + [""] * (len(head) - len(row))
        cell = dict(zip(head, row))
        try:
            line = int(cell["line"])
        except ValueError:
            raise MTError(f"{path}:{n}: line {cell['line']!r} is not a number") from None
        for flag in FLAGS:
            column = flag if flag in cell else COLUMNS.get(flag)
            if column in cell:
                labels.setdefault(flag, {})[line] = cell[column].strip().lower() in ("yes", "y", "1", "true")
            elif "cause" in cell and flag in CAUSES:
                labels.setdefault(flag, {})[line] = cell["cause"].strip() in CAUSES[flag]
        if "mark" in cell:
            for mark in ("full", "wrong"):
                labels.setdefault(mark, {})[line] = cell["mark"].strip() == mark
    return labels


def agreement(rep: dict, labels: dict[str, dict[int, bool]]) -> list[str]:
    """How each flag agrees with the reading: of the lines read as having the fault, how many it flags (recall),
    and of the others how many (false alarms), with the precision."""
    out = []
    flagged = {x["line"]: set(x["flags"]) for x in rep["lines"]}
    for mark, reading in (("full", "full meaning"), ("wrong", "wrong")):  # a judgement: what fires on each mark
        marked = [n for n, v in labels.get(mark, {}).items() if v and n in flagged]
        if marked:
            fired = {f: sum(f in flagged[n] for n in marked) for f in rep["totals"]}
            out.append(f"on the {len(marked)} lines read as {reading}: {sum(bool(flagged[n]) for n in marked)} flagged ("
                       + format_totals(fired) + ")")
    for flag, read in labels.items():
        if flag not in rep["totals"]:
            continue
        yes = [n for n, v in read.items() if v and n in flagged]
        no = [n for n, v in read.items() if not v and n in flagged]
        hit, alarm = sum(flag in flagged[n] for n in yes), sum(flag in flagged[n] for n in no)
        out.append(f"{flag}: flags {hit} of the {len(yes)} lines read as having it ({hit / max(1, len(yes)):.0%}) "
                   f"and {alarm} of the {len(no)} others ({alarm / max(1, len(no)):.0%}); precision "
                   f"{hit / max(1, hit + alarm):.0%}")
    return out


def format_line(n: int, flags: list[Flag]) -> str:
    """line 3: number (five thousand → missing), short (0.31 of predicted)"""
    return f"line {n}: " + ", ".join(str(f) for f in flags)


def format_totals(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def format_report(rep: dict) -> list[str]:
    """`mt check`'s printout: each flagged line, the calibration, what was skipped and why, the totals."""
    out = [format_line(x["line"], [Flag(k, v) for k, v in x["details"].items()]) for x in rep["lines"] if x["flags"]]
    out += [rep["short"]] if rep["short"] else []
    out += [f"{name}: skipped ({why})" for name, why in rep["skipped"].items()]
    flagged = sum(bool(x["flags"]) for x in rep["lines"])
    out.append(f"{len(rep['lines'])} lines, {flagged} flagged: {format_totals(rep['totals'])}")
    return out


def reporter(checker: Checker, emit: Callable[[str], None]) -> Callable[[list[str], list[str]], None]:
    """`mt translate --check`: a function taking each batch's sources and translations, emitting flagged lines."""
    seen = 0

    def report_batch(sources: list[str], translations: list[str]) -> None:
        nonlocal seen
        for flags in check_lines(sources, translations, checker):
            seen += 1
            if flags:
                emit(format_line(seen, flags))
    return report_batch


def read_pair(src: Path, hyp: Path) -> tuple[list[str], list[str]]:
    """A source file and its translations, one sentence a line; one clear line if they do not pair up."""
    for path in (src, hyp):
        if not path.is_file():
            raise MTError(f"file not found: {path}")
    sources, translations = list(corpora.read_lines(src)), list(corpora.read_lines(hyp))
    if len(sources) != len(translations):
        raise MTError(f"line counts differ: {src} has {len(sources)} lines, {hyp} has {len(translations)}")
    return sources, translations


def read_allow(path: Path | None) -> frozenset[str]:
    """--allow FILE: words kept in Latin script, one a line (# comments); matched without case."""
    if path is None:
        return frozenset()
    if not path.is_file():
        raise MTError(f"file not found: {path}")
    return frozenset(w.strip().lower() for w in corpora.read_lines(path) if w.strip() and not w.startswith("#"))
