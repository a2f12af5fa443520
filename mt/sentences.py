"""English sentence splitting for `mt translate` and `mt serve`: a line → sentences → pieces that fit the model.

Rule-based, no model (regular expressions, as Moses' split-sentences.perl): a sentence ends at . ? ! (and any
closing quotes or brackets after it) followed by space and a word that starts with a capital letter or a digit,
possibly after an opening quote. So lowercase, tokenized text ("by all means . go ahead .", the convention of
small_parallel_enja) stays one piece, and these do not end a sentence:
- titles before a name: Mr. Mrs. Ms. Dr. Prof. …; initials: J. K. Rowling;
- other abbreviations (etc. vs. e.g. U.S. a.m. Jan. Inc. …, any word with inner dots), unless the next word is
  a common sentence opener ("at 5 p.m. The train …" splits, "the U.S. Army" does not);
- No. Vol. p. … before a number; decimals (3.5), ellipses (... …), a mark without space after it.

A long sentence that joins clauses with ", but" / ", so" / ", and" (decode.clauses: more words than that) can be
translated clause by clause (coordinated): models trained on short sentences drop the second clause of a long
one, and a clause alone is the length they were trained on. The parts are joined again by the conjunction's
Japanese sentence opener (しかし、 だから、 そして、 それから、), which says what the English says.

A sentence still longer than the model's limit is cut (split_clauses) at sentence punctuation, then at ; : —,
then commas, then before a conjunction, then between words, and as a last resort inside a word; neighbouring
parts are merged back as long as they fit, so the pieces are few and long. `plan_line` says which cuts it made.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_END = re.compile(r"[.?!…]+[\"'”’»)\]]*(?=\s+(\S+))")  # a candidate: marks, closers; group 1: the next word
_OPENERS = "\"'“‘«([¿¡"
_BEFORE = re.compile(r"(?:([\w.&'-]*\w)|[.…])[\"'”’»)\]]*\s*$")  # the word before a mark, or a dot (". . .")
_INNER_DOTS = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]$")  # U.S  e.g  a.m  Ph.D  (the last dot is the candidate)

TITLES = {"mr", "mrs", "ms", "messrs", "mme", "mlle", "dr", "prof", "rev", "gen", "capt", "col", "lt", "sgt",
          "hon", "gov", "sen", "rep", "pres", "fr", "sr", "jr"}  # words before a name: never a sentence end
ABBREVIATIONS = {"etc", "vs", "eg", "ie", "cf", "al", "approx", "ca", "dept", "est", "inc", "ltd", "co", "corp",
                 "bros", "st", "ave", "rd", "blvd", "mt", "ft", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
                 "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri",
                 "sat", "sun", "min", "max", "hr", "hrs", "sec", "oz", "lb", "lbs", "yr", "yrs"}
NUMERIC = {"no", "nos", "vol", "vols", "p", "pp", "art", "fig", "figs", "ch", "op", "para", "nr"}  # before a number
# After an abbreviation, a sentence ends only before one of these (the words that most often open one).
OPENERS = {"I", "You", "He", "She", "It", "We", "They", "The", "This", "That", "These", "Those", "There", "Then",
           "But", "And", "So", "My", "Our", "Your", "His", "Her", "Their", "Its", "In", "On", "At", "After",
           "Before", "When", "If", "Although", "However", "What", "Where", "Who", "Why", "How", "A", "An", "Is",
           "Are", "Was", "Were", "Do", "Does", "Did", "Can", "Could", "Will", "Would", "Please", "Let", "Thank",
           "Thanks", "Yes", "No", "Today", "Tomorrow", "Yesterday", "Now", "Also", "Some", "All", "Many", "One"}


def _ends_here(text: str, match: re.Match) -> bool:
    """Does the sentence end at this candidate (an `_END` match)?"""
    nxt = match.group(1)
    first = nxt.lstrip(_OPENERS)[:1]
    if not (first.isupper() or first.isdigit()):
        return False
    marks = match.group().rstrip("\"'”’»)]")
    if "?" in marks or "!" in marks:
        return True
    if marks != ".":  # an ellipsis
        return False
    before = _BEFORE.search(text, max(0, match.start() - 64), match.start())  # bounded: linear in the line
    if before and before.group(1) is None:  # ". . ." written with spaces
        return False
    word = before.group(1) if before else ""
    bare = word.lower().replace(".", "")
    if bare in TITLES or (bare in NUMERIC and first.isdigit()):
        return False
    if (len(word) == 1 and word.isupper() and word != "I") or bare in ABBREVIATIONS or _INNER_DOTS.search(word):
        return nxt.strip(_OPENERS + ".,;:!?") in OPENERS
    return True


def split_sentences(line: str) -> list[str]:
    """A line of English → its sentences, stripped; a blank line → []."""
    out, start = [], 0
    for match in _END.finditer(line):
        if _ends_here(line, match):
            out.append(line[start: match.end()].strip())
            start = match.end()
    rest = line[start:].strip()
    return [s for s in out if s] + ([rest] if rest else [])


_JA_ENDS, _JA_OPEN, _JA_CLOSE = "。！？!?", "「『（(", "」』）)"


def split_japanese(line: str) -> list[str]:
    """A line of Japanese → its sentences, stripped: each ends at 。！？ outside brackets (「本当？」と言った。 is one)."""
    out, start, depth = [], 0, 0
    for i, ch in enumerate(line):
        depth += (ch in _JA_OPEN) - (ch in _JA_CLOSE and depth > 0)
        if ch in _JA_ENDS and depth == 0 and line[i + 1: i + 2] not in _JA_ENDS:
            out.append(line[start: i + 1].strip())
            start = i + 1
    rest = line[start:].strip()
    return [s for s in out if s] + ([rest] if rest else [])


# A clause joined by a coordinating conjunction: ", and|but|so|yet" (or "but|so" without the comma before a
# personal pronoun, "and so" too), then a subject and at least two more words. Not "so that", not "and" without the comma
# ("my wife and I went").
_SUBJECT = (r"(?:i|you|he|she|it|we|they|there|this|that|these|those|the|a|an|my|your|his|her|our|their|its|"
            r"everyone|everybody|nobody|someone|somebody|nothing|everything)(?:'[a-z]+)?")
_PRONOUN = r"(?:i|you|he|she|it|we|they|there)(?:'[a-z]+)?"
_CLAUSE = re.compile(rf",\s+(and\s+then|and|but|so|yet)\s+(?=(?!that\b){_SUBJECT}\s+\S+\s+\S)"
                     rf"|\s+(?:and\s+)?(but|so)\s+(?=(?!that\b){_PRONOUN}\s+\S+\s+\S)", re.IGNORECASE)
CONNECTIVES = {"and": "そして、", "and then": "それから、", "but": "しかし、", "yet": "しかし、", "so": "だから、"}
_END_MARKS = ".?!…"


def coordinated(sentence: str, more_than: int) -> list[tuple[str, str]]:
    """A sentence of more than `more_than` words → its coordinated clauses as (Japanese opener, English clause),
    the first with opener ""; each clause made a sentence (capitalised, ending in the sentence's mark: "." for
    all but the last). A sentence with no such join, or not that long (or more_than = 0), comes back whole.
    A clause of fewer than three words stays with its neighbour ("Yes, but I do" is one sentence)."""
    if more_than <= 0 or len(sentence.split()) <= more_than:
        return [("", sentence)]
    parts, start, opener = [], 0, ""
    for match in _CLAUSE.finditer(sentence):
        left = sentence[start: match.start()].strip()
        word = " ".join((match.group(1) or match.group(2)).lower().split())
        if word == "and" and "," in left:  # "apples, bread, and the milk we need": a list, not two clauses
            continue
        if len(left.split()) < 3:
            continue
        parts.append((opener, left))
        opener, start = CONNECTIVES[word], match.end()
    if not parts:
        return [("", sentence)]
    parts.append((opener, sentence[start:].strip()))
    end = sentence.rstrip()[-1]
    last = len(parts) - 1
    return [(o, _as_sentence(c, end if k == last else ".")) for k, (o, c) in enumerate(parts)]


def _as_sentence(clause: str, mark: str) -> str:
    """A clause → a sentence: first letter capitalised, ending in `mark` unless it ends in a mark already."""
    clause = clause[:1].upper() + clause[1:]
    return clause if clause[-1] in _END_MARKS or mark not in _END_MARKS else clause + mark


# Cut points of an over-long sentence, strongest first: (name for the note, pattern of the gaps cut at).
LEVELS = [
    ("sentence punctuation", re.compile(r"(?<=[.?!…])[\"'”’»)\]]*\s+")),
    ("clause punctuation", re.compile(r"(?<=[;:—–])\s+|\s+-\s+")),
    ("commas", re.compile(r"(?<=[,、])\s+")),
    ("conjunctions", re.compile(r"\s+(?=(?:and|but|or|so|because|while|although|though|whereas|unless|until|"
                                r"since|then|which|who)\s)", re.IGNORECASE)),
    ("word boundaries", re.compile(r"\s+")),
]
INSIDE_WORDS = "inside words"


def _cut(text: str, pattern: re.Pattern) -> list[str]:
    """`text` cut at every gap `pattern` matches (the gaps dropped), empty parts left out."""
    parts, start = [], 0
    for gap in pattern.finditer(text):
        parts.append(text[start: gap.start()])
        start = gap.end()
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _merge(parts: list[str], fits: Callable[[str], bool]) -> list[str]:
    """Neighbouring parts joined by a space as long as the join fits."""
    out = [parts[0]]
    for part in parts[1:]:
        joined = f"{out[-1]} {part}"
        if fits(joined):
            out[-1] = joined
        else:
            out.append(part)
    return out


def _chars(word: str, fits: Callable[[str], bool]) -> list[str]:
    """A word too long by itself → the longest prefixes that fit, one after another (binary search)."""
    out = []
    while word:
        low, high = 1, len(word)  # the longest prefix that fits; at least one character
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if fits(word[:mid]) else (low, mid - 1)
        out.append(word[:low])
        word = word[low:]
    return out


def _pieces(text: str, fits: Callable[[str], bool], level: int, used: set[str]) -> list[str]:
    """`text` → pieces that fit, cutting at LEVELS[level] and weaker; the names of the cuts made go in `used`."""
    if fits(text):
        return [text]
    if level == len(LEVELS):
        used.add(INSIDE_WORDS)
        return _chars(text, fits)
    name, pattern = LEVELS[level]
    parts = _cut(text, pattern)
    if len(parts) == 1:
        return _pieces(text, fits, level + 1, used)
    used.add(name)
    return [p for part in _merge(parts, fits) for p in _pieces(part, fits, level + 1, used)]


def _split(sentence: str, max_tokens: int, count: Callable[[str], int]) -> tuple[list[str], set[str]]:
    used: set[str] = set()
    return _pieces(sentence.strip(), lambda s: count(s) <= max_tokens, 0, used), used


def split_clauses(sentence: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """A sentence → pieces of at most `max_tokens` tokens each (`count` tokenizes), cut at the strongest
    punctuation available; a sentence that fits comes back whole."""
    return _split(sentence, max_tokens, count)[0]


@dataclass(frozen=True)
class Plan:
    """What one input line is translated as: its pieces in order, the Japanese each piece's translation is
    preceded by ("" or a clause's opener, as しかし、), and what to tell the user about them."""

    pieces: list[str]
    notes: list[str]
    openers: list[str] = field(default_factory=list)  # one per piece; empty: none


def plan_line(line: str, max_tokens: int, count: Callable[[str], int], split: bool = True,
              clauses: int = 0, lang: str = "en") -> Plan:
    """A line → the pieces to translate. split=False: the line whole (the model truncates it past
    `max_tokens`, and a note says so); else its sentences, a sentence of more than `clauses` words (0: none)
    split into its coordinated clauses, and each over-long piece cut by split_clauses, with a note. A line of
    Japanese (`lang` "ja", a ja-en model's source) is split into its sentences at 。！？ alone."""
    if not line.strip():
        return Plan([], [])
    if not split:
        over = count(line) > max_tokens
        return Plan([line], [f"longer than {max_tokens} tokens, translated from a truncated source "
                             f"(sentence splitting is off)"] if over else [])
    if lang == "ja":
        sentences, clauses = split_japanese(line), 0
    else:
        sentences = split_sentences(line)
    pieces, notes, openers = [], [], []
    for k, sentence in enumerate(sentences, 1):
        for opener, clause in coordinated(sentence, clauses):
            n = count(clause)
            cut, used = _split(clause, max_tokens, count) if n > max_tokens else ([clause], set())
            if used:
                which = f"sentence {k} of {len(sentences)}, " if len(sentences) > 1 else ""
                how = " and ".join(name for name, _ in [*LEVELS, (INSIDE_WORDS, None)] if name in used)
                notes.append(f"{which}{n} tokens, more than the model's limit of {max_tokens}: translated in "
                             f"{len(cut)} pieces split at {how}")
            pieces.extend(cut)
            openers.extend([opener] + [""] * (len(cut) - 1))
    return Plan(pieces, notes, openers)
