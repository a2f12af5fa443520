"""A bilingual dictionary for the words a model cannot translate (issue 30 §4).

With a word vocabulary, an English word outside it reaches the model as <unk>, and an output <unk> copies
the source word it attends to (mt/unk.py): *icy* would come out as "icy". `fill` decides what the copy
becomes instead:

- a name stays a name: a word written with a capital letter in the user's text (not as its first word)
  is never looked up as a common word, so it is never replaced by another word; it is written as JMnedict
  (JMdict's name dictionary, in the same package) has it (mt/names.py: Tanaka → 田中, Kimura → キムラ);
  where JMnedict lacks it, a word JMdict glosses with the capital itself (days, months, peoples, feasts:
  *Mondays* → 月曜日, *Christmas*) is written as JMdict has it, anything else kept as written ("Tanaka"),
  as it is where no dictionary is loaded;
- otherwise the word is looked up in JMdict (the `jamdict` and `jamdict-data` packages: the extra
  `mt-enja[dict]`; JMdict is © the Electronic Dictionary Research and Development Group, CC BY-SA 4.0);
- a number in words (*eighty-five*) becomes its digits (85), before any lookup;
- a word JMdict lacks is rendered as a name if the user capitalised it (a sentence's first word: *Yuki is
  my friend*), else copied as before (and `mt check` flags it `untranslated`).

The sense is chosen by a rule: among the entries with a gloss equal to the word (or to "to <word>", how
JMdict glosses verbs, or to the word and a note in brackets, "natto (fermented soybeans)"; a hyphenated word
also with a space, round-trip → "round trip"; after removing a plural or -ed/-ing ending if the word itself has none; a
comparative or superlative JMdict lacks as its adjective (an i-adjective first) after より or 最も, worse → より悪い,
bigger → より大きい; an irregular
form by its base first, went → go, unless it is a word of its own as often, left), prefer a
match in the entry's first sense, then the more frequent entry (JMdict's priority tags: ichi1, news1,
spec1, gai1 count 2, their "2" forms 1), then the earlier gloss. The Japanese is the entry's first kanji
form, or its first kana form where the sense is marked "usually written using kana alone".
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from importlib.util import find_spec
from typing import Any

from mt.errors import MTError
from mt.names import PERSON, Candidate, capitalised, render, spellings, written_as
from mt.numbers import english_numbers

NAMES = ("none", "jmdict")
_FREQUENT = {"ichi1": 2, "news1": 2, "spec1": 2, "gai1": 2, "ichi2": 1, "news2": 1, "spec2": 1, "gai2": 1}
_KANA_ALONE = "word usually written using kana alone"
_PAREN = re.compile(r"\s*\([^)]*\)\s*")
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


# irregular past tenses, past participles and plurals → their base form (the common ones; a table, not a guess)
_IRREGULAR_BASES = """
arise arose arisen|awake awoke awoken|be was were been|bear bore borne|beat beaten|become became|begin began
begun|bend bent|bet|bind bound|bite bit bitten|bleed bled|blow blew blown|break broke broken|breed bred|bring
brought|build built|burn burnt|buy bought|catch caught|choose chose chosen|cling clung|come came|cost|creep
crept|cut|deal dealt|dig dug|do did done|draw drew drawn|dream dreamt|drink drank drunk|drive drove driven|eat
ate eaten|fall fell fallen|feed fed|feel felt|fight fought|find found|flee fled|fly flew flown|forbid forbade
forbidden|forget forgot forgotten|forgive forgave forgiven|freeze froze frozen|get got gotten|give gave given|go
went gone|grind ground|grow grew grown|hang hung|have had|hear heard|hide hid hidden|hit|hold held|hurt|keep
kept|kneel knelt|know knew known|lay laid|lead led|lean leant|leap leapt|learn learnt|leave left|lend lent|let|
lie lay lain|light lit|lose lost|make made|mean meant|meet met|pay paid|prove proven|put|quit|read|ride rode
ridden|ring rang rung|rise rose risen|run ran|say said|see saw seen|seek sought|sell sold|send sent|set|sew
sewn|shake shook shaken|shine shone|shoot shot|show shown|shrink shrank shrunk|shut|sing sang sung|sink sank
sunk|sit sat|sleep slept|slide slid|speak spoke spoken|speed sped|spend spent|spill spilt|spin spun|spit spat|
split|spread|spring sprang sprung|stand stood|steal stole stolen|stick stuck|sting stung|stink stank stunk|
strike struck|strive strove striven|swear swore sworn|sweep swept|swim swam swum|swing swung|take took taken|
teach taught|tear tore torn|tell told|think thought|throw threw thrown|understand understood|wake woke woken|
wear wore worn|weep wept|win won|wind wound|write wrote written"""
_IRREGULAR_PLURALS = """child children|man men|woman women|foot feet|tooth teeth|mouse mice|person people|goose geese|
knife knives|leaf leaves|life lives|wife wives|wolf wolves|half halves|shelf shelves|thief thieves|loaf loaves"""
VERB_FORMS, PLURALS = ({form: group.split()[0] for group in table.replace("\n", " ").split("|") for form in group.split()[1:]}
                       for table in (_IRREGULAR_BASES, _IRREGULAR_PLURALS))
IRREGULAR = VERB_FORMS | PLURALS
# forms that are words of their own as often as not (the left hand, the ground, a rose): looked up as themselves
# first; any other irregular form is looked up by its base first (went → 行く, not JMdict's honorific for "went")
OWN_WORDS = {"left", "ground", "wound", "bound", "rose", "lay", "lives", "leaves", "people", "lain"}


def lemmas(word: str) -> list[str]:
    """`word`, then the forms it may be inflected from (dogs → dog, cities → city, walked → walk, going → go,
    got → get, children → child)."""
    if word in IRREGULAR:
        return [word, IRREGULAR[word]] if word in OWN_WORDS else [IRREGULAR[word], word]
    out = [word]
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ied", "y"), ("ed", ""), ("ed", "e"), ("d", ""),
                         ("ing", ""), ("ing", "e")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: len(word) - len(suffix)] + repl
            if len(stem) >= 4 and stem[-1] == stem[-2] and suffix in ("ed", "ing") and not repl:
                out.append(stem[:-1])  # stopped → stop, running → run
            out.append(stem)
    return list(dict.fromkeys(out))


_DEGREE_BASES = {"worse": "bad", "worst": "bad", "better": "good", "best": "good", "less": "little", "least": "little",
                 "farther": "far", "further": "far", "farthest": "far", "furthest": "far", "elder": "old", "eldest": "old"}
_ADJECTIVES = ("adjective (keiyoushi)", "adjectival nouns or quasi-adjectives (keiyodoshi)")


def degrees(word: str) -> list[tuple[str, str]]:
    """(adjective, Japanese prefix) a comparative or superlative may come from: bigger → (big, より), nicest →
    (nice, 最も), happier → (happy, より), worse → (bad, より); [] for anything else."""
    if word in _DEGREE_BASES:
        return [(_DEGREE_BASES[word], "最も" if word.endswith("st") else "より")]
    for suffix, prefix in (("est", "最も"), ("er", "より")):
        stem = word[: -len(suffix)]
        if not word.endswith(suffix) or len(stem) < 2:
            continue
        forms = [stem[:-1] + "y"] if stem.endswith("i") else [stem, stem + "e"]  # happier; taller, nicer
        if len(stem) >= 3 and stem[-1] == stem[-2]:
            forms.insert(0, stem[:-1])  # bigger → big
        return [(form, prefix) for form in forms]
    return []


def _priority(entry: Any) -> int:
    tags = set()
    for forms in (entry.kanji_forms, entry.kana_forms):
        if forms:
            tags |= set(forms[0].pri or [])
    return sum(_FREQUENT.get(t, 0) for t in tags)


def _written(entry: Any, sense: Any) -> str:
    if entry.kanji_forms and _KANA_ALONE not in (sense.misc or []):
        return entry.kanji_forms[0].text
    return entry.kana_forms[0].text


def choose(word: str, entries: list[Any], verb: bool = False, capital: bool = False,
           adjective: str | None = None) -> str | None:
    """The Japanese for `word` among JMdict entries (the rule in the module docstring), or None; `verb`: only
    a "to <word>" gloss counts (the base of *went* is the verb go, not the game); `capital`: only a gloss
    written with a capital (Monday, not monday); `adjective`: only a sense JMdict marks with this part of speech."""
    wanted = {f"to {word}"} if verb else {word, f"to {word}"}
    best: tuple | None = None
    for entry in entries:
        for s, sense in enumerate(entry.senses):
            if adjective and adjective not in (getattr(sense, "pos", None) or ()):
                continue
            for g, gloss in enumerate(sense.gloss):
                text = _PAREN.sub(" ", gloss.text).strip()
                if text.lower() in wanted and (not capital or text[:1].isupper()):
                    key = (s == 0, _priority(entry), -g)
                    if best is None or key > best[0]:
                        best = (key, _written(entry, sense))
                    break
    return best[1] if best else None


class JMdict:
    """English word → Japanese word, from JMdict through jamdict (looked up once per word)."""

    def __init__(self) -> None:
        try:
            from jamdict import Jamdict
        except ImportError:
            raise MTError("decode.dictionary = \"jmdict\" needs JMdict: pip install 'mt-enja[dict]' "
                          "(the jamdict and jamdict-data packages)") from None
        if find_spec("jamdict_data") is None:
            raise MTError("jamdict has no JMdict database: pip install jamdict-data")
        self._jam = Jamdict()
        self._glosses: sqlite3.Connection | None = None  # the same database, for range queries on glosses

    @lru_cache(maxsize=65536)  # noqa: B019 (one dictionary per process; the cache is its point)
    def lookup(self, word: str, capital: bool = False) -> str | None:
        """The Japanese for a lowercase English word, or None where JMdict has no entry for it. JMdict's glosses
        are looked up case by case: a word none of whose glosses is written lowercase is looked up written with
        a capital (monday → Monday) after; `capital`: only that. Accents go first (café → cafe)."""
        word = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
        if not _WORD.fullmatch(word):
            return None
        spaced = [word.replace("-", " ")] if "-" in word else []  # round-trip: JMdict glosses "round trip"
        for form in [*lemmas(word), *spaced]:
            if not capital:
                entries = [e for query in (form, f"to {form}", *self._noted(form))
                           for e in self._jam.lookup(query).entries]
                found = choose(form, entries, verb=VERB_FORMS.get(word) == form)
                if found:
                    return found
            found = choose(form, list(self._jam.lookup(form.capitalize()).entries), capital=True)
            if found:
                return found
        if not capital:
            for base, prefix in degrees(word):  # a comparative JMdict lacks: より and its adjective (worse → より悪い)
                entries = list(self._jam.lookup(base).entries)
                for kind in _ADJECTIVES:  # an i-adjective first: bad → 悪い, not the na-adjective 不良
                    found = choose(base, entries, adjective=kind)
                    if found:
                        return prefix + found
        return None

    def _noted(self, form: str) -> list[str]:
        """JMdict's glosses that are `form` and a note in brackets ("natto (fermented soybeans)"): a range on the
        gloss index (jamdict's "natto (%" wildcard scans the table, 0.3 s a word)."""
        if self._glosses is None:
            self._glosses = sqlite3.connect(f"file:{self._jam.db_file}?mode=ro", uri=True, check_same_thread=False)
        low = f"{form} ("
        rows = self._glosses.execute("SELECT DISTINCT text FROM SenseGloss WHERE text >= ? AND text < ? LIMIT 20",
                                     (low, low + "\uffff")).fetchall()
        return [text for (text,) in rows]

    @lru_cache(maxsize=65536)  # noqa: B019
    def names(self, written: str) -> tuple[Candidate, ...]:
        """JMnedict's entries for a name as the user wrote it (Tanaka) or a long-vowel spelling of it."""
        if not re.fullmatch(r"[A-Z][a-z]+", written):
            return ()
        out = []
        for spelling in spellings(written):
            for entry in self._jam.lookup(spelling).names:
                if any(g.text == spelling for sense in entry.senses for g in sense.gloss) and entry.kana_forms:
                    kanji = entry.kanji_forms[0].text if entry.kanji_forms else None
                    person = any(set(sense.name_type) & PERSON for sense in entry.senses)
                    out.append((kanji, entry.kana_forms[0].text, person))
        return tuple(out)


@lru_cache(maxsize=2)
def load(name: str) -> JMdict | None:
    """The dictionary a decode config names ("none": no dictionary)."""
    if name not in NAMES:
        raise MTError(f"decode.dictionary: unknown dictionary {name!r}; expected one of {', '.join(NAMES)}")
    return JMdict() if name == "jmdict" else None


def _numeral(word: str) -> str | None:
    """A number written in words (eighty-five, twelve) → its digits (85, 12); anything else → None (an
    ordinal in digits, 16th, stays: mt/renumber.py writes a date's day as 16日)."""
    if not _WORD.fullmatch(word.lower()):  # words only: "1,200" is copied as written
        return None
    found = english_numbers(word)
    if len(found) == 1 and found[0].kind == "number" and found[0].text.lower() == word.lower():
        value = found[0].value
        return str(int(value)) if value == int(value) else str(value)
    return None


def fill(word: str, raw: str, dictionary: JMdict | None,
         rank: Callable[[str], int | None] = lambda form: None) -> str:
    """What an output <unk> that copies source word `word` becomes (the rule in the module docstring);
    `rank(form)`: a Japanese form's place in the target vocabulary, None if absent (names.render)."""
    numeral = _numeral(word)
    if numeral:
        return numeral
    written = written_as(word, raw)
    name = capitalised(word, raw)
    if name and dictionary is not None:
        return render(list(dictionary.names(name)), rank) or dictionary.lookup(word.lower(), capital=True) or name
    if name or dictionary is None:
        return written or word  # a name (or an acronym) the user wrote so, or no dictionary: kept as written
    found = dictionary.lookup(word.lower())
    if found:
        return found
    if written and written != written.lower():  # a capitalised first word JMdict lacks: a name (Yuki is …)
        return render(list(dictionary.names(written)), rank) or written
    return written or word
