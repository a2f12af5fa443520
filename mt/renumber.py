"""Numbers from the source: an output number that says otherwise is rewritten to the source's.

A word-vocabulary model translates numbers as words it learnt: *five thousand yen* can come out as
５万円, *7:30* as ７時. After search, the source's numbers and the output's are read as `mt.numbers`
reads them for the `number` check (same values, 12-hour clock). Where the source numbers the output
lacks and the output numbers the source lacks pair up one to one, in order and by kind (a clock time
with a clock time, a count with a count), each output numeral is replaced by the source's value,
written as Japanese writes it (５０００, １万１０００, ７時半, ８時４５分), in the width the output used.
Anything else (a number dropped, or more on one side) is left alone: the check still flags it.

Before search (`proxy`): a number the source vocabulary lacks would reach the model as <unk>, which it drops
(*45 minutes late* → 遅刻した). It goes in as a number the vocabulary has, of the same shape (45 → 10, 1,500 →
1,000, 10:30 → 10:00, thirty-two → 10: the most frequent one the sentence does not hold already), and the
rewriting above puts the source's number back.

An ordinal said as a count (*the second light* → ２つの信号) gets the 目 that makes the count an ordinal
(２つ目の信号).

Dates: months pair only with months (*October* said as ３月 becomes １０月); a day the output dropped
beside a month it kept gets its 日 back (*April 1st* → ４月 becomes ４月１日); a day left in English
(*on the 31st* → 31st) is written 31日.
"""

from __future__ import annotations

import re
import unicodedata

from mt.numbers import (
    COUNTER,
    JA_MONTH,
    NUMERAL,
    NUMERAL_CHAR,
    Number,
    english_numbers,
    japanese_value,
    may_be_hour,
    role,
    unmatched,
)

_WIDE = str.maketrans("0123456789", "０１２３４５６７８９")


def _normalised(text: str) -> tuple[str, list[int]]:
    """`text` as japanese_numbers reads it (width-normalised, spaces out, digit groups joined), and for
    each of its characters the index of the character of `text` it came from."""
    chars, where = [], []
    for i, c in enumerate(text):
        n = unicodedata.normalize("NFKC", c)
        if n.isspace() or not n:
            continue
        chars.append(n[0])
        where.append(i)
    out, index = [], []
    for k, c in enumerate(chars):  # 5,000 · １、０００: a separator between digits and three more goes
        if c in ",、" and 0 < k and chars[k - 1].isdigit() and "".join(chars[k + 1: k + 4]).isdigit() \
                and not (k + 4 < len(chars) and chars[k + 4].isdigit()):
            continue
        out.append(c)
        index.append(where[k])
    return "".join(out), index


def render(number: Number, wide: bool, prefix: str = "") -> str:
    """A value as Japanese writes it: 5000 → 5000, 11000 → 1万1000, 450 min → 7時半, 525 → 8時45分."""
    if number.kind == "month":
        text = f"{int(number.value)}月"
    elif number.kind == "time":
        hour, minutes = divmod(int(number.value) % 1440, 60)
        if prefix == "午後" and hour > 12:
            hour -= 12
        text = f"{prefix}{hour}時" + ("半" if minutes == 30 else f"{minutes}分" if minutes else "")
    else:
        value = number.value
        whole = int(value)
        if value != whole:
            text = f"{value:g}"
        elif whole >= 10_000 and whole % 1000 == 0:
            man, rest = divmod(whole, 10_000)
            text = f"{man}万" + (str(rest) if rest else "")
        else:
            text = str(whole)
    return text.translate(_WIDE) if wide else text


def _comparable(n: Number, e: Number) -> bool:
    """Can output number `e` be the source's `n` said otherwise? Times with times, counts with counts, and
    a bare count with a whole hour (*at nine* → ８時); a clock time against a count, an ordinal (*the second
    light* → ２時) or a day (*on the 3rd* → ３時) is something else, and so is a price against a count of things
    (*three tickets* → ２万円)."""
    if "month" in (n.kind, e.kind):
        return n.kind == e.kind
    roles = role(n), role(e)  # a price, a count of things, an ordinal: only an ordinal said as a count is mended
    if all(roles) and roles[0] != roles[1] and not (roles == ("ordinal", "count") and n.value == e.value):
        return False
    if n.kind == "time" or e.kind != "time":
        return (n.kind == "time") == (e.kind == "time")
    return may_be_hour(n) and e.value % 60 == 0


def _pairs(src: str, hyp: str) -> list[tuple[Number, Number]]:
    """(source number, output number) pairs to rewrite: the unmatched on both sides, one to one by kind."""
    missing, extra = unmatched(src, hyp)
    pairs = []
    for months in (True, False):  # months with months, then the rest, each one to one in order
        have = [e for e in extra if (e.kind == "month") == months]
        wanted = [n for n in missing if (n.kind == "month") == months]
        # the rest without the days, if with them it is not one to one: _dates puts a dropped day back
        for want in (wanted, [] if months else [n for n in wanted if n.kind != "day"]):
            if want and len(want) == len(have) and all(_comparable(n, e) for n, e in zip(want, have, strict=True)):
                pairs += zip(want, have, strict=True)
                break
    return sorted(pairs, key=lambda p: extra.index(p[1]))


_LATIN_ORDINAL = re.compile(r"(?<![A-Za-z0-9])(\d{1,2}) ?(?:st|nd|rd|th)(?![A-Za-z])")


def _dates(src: str, hyp: str) -> str:
    """A day left in English (31st) written 31日; a day dropped beside a month the output kept, put back."""
    numbers = english_numbers(src)
    days = {int(n.value) for n in numbers if n.kind == "day"}
    hyp = _LATIN_ORDINAL.sub(lambda m: f"{m[1]}日" if int(m[1]) in days else m[0], hyp)
    for a, b in zip(numbers, numbers[1:]):
        month, day = (a, b) if a.kind == "month" else (b, a)
        if month.kind != "month" or day.kind != "day":
            continue
        for m in JA_MONTH.finditer(hyp):
            if japanese_value(m[1]) == month.value and not re.match(rf"\s*{NUMERAL}\s*日", hyp[m.end():]):
                wide = any("０" <= c <= "９" for c in m[1])
                hyp = hyp[:m.end()] + render(Number(day.value, day.text), wide) + "日" + hyp[m.end():]
                break
    return hyp


def from_source(src: str, hyp: str) -> str:
    """`hyp` with each number that says otherwise than the source (and pairs with one of its numbers)
    rewritten to the source's, and a date's day put back (`_dates`); `hyp` unchanged where nothing pairs.
    Works on text and corpus tokens."""
    return _dates(src, _rewritten(src, hyp))


def _rewritten(src: str, hyp: str) -> str:
    pairs = _pairs(src, hyp)
    if not pairs:
        return hyp
    flat, index = _normalised(hyp)
    edits, start = [], 0
    for n, e in pairs:
        found = re.compile(rf"(?<!{NUMERAL_CHAR}){re.escape(e.text)}(?!{NUMERAL_CHAR})").search(flat, start)
        if found is None:  # the numeral stands alone: the 2 of ２つ, never the 2 of １２階
            return hyp
        at = found.start()
        first, last = index[at], index[at + len(e.text) - 1]
        raw = hyp[first: last + 1]
        wide = any("０" <= c <= "９" for c in raw) or not any(c.isdigit() and c.isascii() for c in raw)
        prefix = "午後" if e.text.startswith("午後") else "午前" if e.text.startswith("午前") else ""
        target = n if n.kind == "time" or e.kind != "time" else Number(n.value * 60, n.text, "time")
        text = render(target, wide, prefix)
        gap = len(hyp[last + 1:]) - len(hyp[last + 1:].lstrip())  # corpus tokens: ２ つ
        if n.kind == "ordinal" and role(e) == "count" and COUNTER.match(hyp[last + 1 + gap:]):
            # the second light said as ２つの信号: ２つ目の信号
            last, text = last + 1 + gap, text + hyp[last + 1: last + 2 + gap] + " " * bool(gap) + "目"
        edits.append((first, last + 1, text))
        start = at + len(e.text)
    for first, end, text in reversed(edits):
        hyp = hyp[:first] + text + hyp[end:]
    return hyp


_NUMERAL_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*")


def shape(token: str) -> str | None:
    """A numeral token's shape, its digits as 9 (45 → 99, 1,500 → 9,999, 10:30 → 99:99); a number in words
    has its value's (thirty-two → 99); None for anything else."""
    if _NUMERAL_TOKEN.fullmatch(token):
        return re.sub(r"\d", "9", token)
    found = english_numbers(token) if re.fullmatch(r"[a-z]+(?:-[a-z]+)*", token) else []
    if len(found) == 1 and found[0].kind == "number" and found[0].text == token and found[0].value == int(found[0].value):
        return "9" * len(str(int(found[0].value)))
    return None


def shapes(vocabulary: list[str]) -> dict[str, list[str]]:
    """Shape → the vocabulary's numerals in digits of that shape, in its order (most frequent first)."""
    out: dict[str, list[str]] = {}
    for token in vocabulary:
        if _NUMERAL_TOKEN.fullmatch(token):
            out.setdefault(shape(token), []).append(token)
    return out


def proxy(token: str, known: dict[str, list[str]], sentence: list[str]) -> str | None:
    """The known numeral of `token`'s shape to send the model instead (None: no numeral, or none of its
    shape): the first (most frequent) of `known[shape]` that neither the sentence's tokens nor its number
    values hold. The most frequent, not the nearest in value: on the everyday dev half the nearest left
    11 lines with a number flag, the most frequent 8 (docs/everyday.md)."""
    form = shape(token)
    if form is None:
        return None
    taken = set(sentence) | {str(int(n.value)) for n in english_numbers(" ".join(sentence)) if n.value == int(n.value)}
    return next((t for t in known.get(form, []) if t not in taken), None)
