"""Numbers in a sentence, normalised so an English source and its Japanese translation compare.

English (raw, or small_parallel_enja's tokens): digits (1,200 · 1.5 · 3rd · 50% · $5), number words
(twenty-one, five thousand, a hundred), ordinals (third, twenty-first), times (7:30, ten o'clock,
half past nine, a quarter to six, 3 p.m.). Japanese (raw, or space-separated corpus tokens): Arabic
digits in any width (５０００, 5,000, １、０００), kanji numerals (五千, 三百五十, 一万二千, 二〇二〇,
mixed ５千 · １００万), kana counts (ふたり, みっつ), times (９時半, ８時１５分前, 午後３時, 7:30).
Dates: an English month name (*may* and *march* only where a date is meant: *in May*, *May 5th*) and a
Japanese 十月 · １０月 are months; the day beside a month (*October 3rd*, *the 3rd of October*) or after
*on the* (*on the 31st*) is a day, said in Japanese as ３日.
A time's value is minutes after midnight; `same` compares times on a 12-hour clock (3 p.m. is 3時) and
months only with months.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from mt.text import normalize_en


@dataclass(frozen=True)
class Number:
    """One number as written (`text`) and its value; a time's value is minutes after midnight."""

    value: float
    text: str
    kind: str = "number"  # number | time | ordinal | month | day
    alternatives: tuple[str, ...] = field(default=(), compare=False)  # Japanese words that also say it (最初)
    unit: str = field(default="", compare=False)  # what follows it: tickets, yen, $ · つ, 円, 番目, 第 (before)


# What a number's unit makes it: a price, a count of things, or a place in an order. Two numbers whose roles are
# both known and differ say different things: *three tickets* is not ３円, *the second light* not ２つ.
_PRICE_EN = {"$", "yen", "dollars", "dollar", "cents", "euros", "euro", "pounds", "bucks"}
_NOT_PLURAL = {"less", "plus", "minus", "this", "was", "has", "his", "its", "yes", "does", "always", "perhaps",
               "unless", "across", "towards", "afterwards", "thus", "yours", "ours", "hers", "theirs", "whereas",
               "besides", "sometimes", "is", "as", "us", "o'clock", "downstairs", "upstairs", "indoors", "outdoors",
               "overseas", "nowadays", "seems", "looks", "sounds", "means", "goes", "comes", "leaves", "starts", "opens",
               "closes", "works", "makes", "gets", "takes", "gives", "says", "feels", "knows", "wants", "likes", "needs"}
_PLURAL_IRREGULAR = {"people", "children", "men", "women", "feet", "teeth", "mice", "sheep", "fish"}
_PRICE_JA = ("円", "ドル", "セント", "ユーロ", "ポンド")
# not 年目 / 日目 (５年目 also says *five years since*), nor 着 (１着 is *first place*, ２着 two garments)
_ORDINAL_JA = re.compile(r"(?:番|時間|時限|[つ個本枚人回度匹冊台杯軒階]?)目")  # ２つ目, ３番目, ３時間目 (第 before)
COUNTER = re.compile(r"[つ個本枚匹冊台杯頭羽軒足名人](?!目)")  # ２つ, ３本, ５人: a count of things
_DURATION_JA = ("分", "秒", "時間", "日間", "週間", "か月", "ヶ月", "カ月", "年間")  # ３分, ２時間: a count of time


def role(n: Number) -> str:
    """"price", "count" (of things: *three tickets*, ３枚), "ordinal" (*third*, ３番目, 第３), or "" (unknown)."""
    if n.kind == "ordinal" or n.unit == "第" or _ORDINAL_JA.match(n.unit):
        return "ordinal"
    if n.unit in _PRICE_EN or n.unit.startswith(_PRICE_JA):
        return "price"
    plural = n.unit.isalpha() and n.unit.isascii() and (
        n.unit in _PLURAL_IRREGULAR or (len(n.unit) > 3 and n.unit.endswith("s") and n.unit not in _NOT_PLURAL))
    if (plural and n.value != 1) or COUNTER.match(n.unit) or n.unit.startswith(_DURATION_JA):
        return "count"
    return ""


def said(n: Number) -> str:
    """The number as written with the unit that gives it its role (three tickets, ３円, ２つ, 第３), for messages."""
    if not role(n) or n.kind == "ordinal" or n.unit in n.text:
        return n.text
    if n.unit == "第":
        return "第" + n.text
    if n.unit.isascii():
        return f"{n.text} {n.unit}"
    units = [p for p in _PRICE_JA + _DURATION_JA if n.unit.startswith(p)]
    unit = units[0] if units else next(m[0] for m in (_ORDINAL_JA.match(n.unit), COUNTER.match(n.unit)) if m)
    return n.text + unit


def may_be_hour(n: Number) -> bool:
    """Can a plain number be said as a whole hour (*at nine* → ９時)? A number of 0–24, never an ordinal, a day,
    a price or a count of things (*three nights* is not ３時)."""
    return n.kind not in ("ordinal", "day") and not role(n) and n.value == int(n.value) and 0 <= n.value <= 24


def same(a: Number, b: Number) -> bool:
    """Do two numbers say the same thing? Times on a 12-hour clock; a whole hour equals its plain number,
    never an ordinal or a day (the second light, on the 3rd are not ２時, ３時); a month only a month (October is
    not 10 of anything); a price, a count of things and an ordinal never each other (three tickets is not ３円)."""
    if "month" in (a.kind, b.kind):
        return a.kind == b.kind and a.value == b.value
    if a.kind == "time" and b.kind == "time":
        return a.value % 720 == b.value % 720
    if "time" in (a.kind, b.kind):
        t, n = (a, b) if a.kind == "time" else (b, a)
        return may_be_hour(n) and t.value % 60 == 0 and (t.value // 60) % 12 == n.value % 12
    roles = role(a), role(b)
    return a.value == b.value and (not all(roles) or roles[0] == roles[1])


# -- English ----------------------------------------------------------------------------------

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_ORDINALS = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
                                        "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
                                        "nineteenth".split(), 1)}
_ORDINALS.update({w.replace("y", "ieth"): v for w, v in _TENS.items()})
_ORDINALS.update({w + "th": v for w, v in _SCALES.items()})
_FIRST = ("最", "初", "始め", "はじめ", "一番", "まず", "先", "第一", "トップ")  # "first" is rarely 1 in Japanese
_SAID_OTHERWISE = {0: ("ゼロ", "零"), 2: ("両", "双")}  # two → 両国, 両方; zero → ゼロ
# a bare "one" counts only before a noun (one brother → 兄が一人): not the one, no one, one of, one should, one day
_ONE_BEFORE = {"the", "this", "that", "which", "no", "every", "any", "each", "some", "another", "little", "only",
               "other", "new", "old", "right", "wrong", "same", "last", "big", "small", "at", "all", "from", "as"}
_ONE_AFTER = {"another", "of", "'s", "day", "morning", "evening", "night", "afternoon", "by", "at", "or", "and", "to",
              "thing", "way", "time", "who", "that", "which", "after", "should", "must", "can", "could", "will",
              "would", "may", "might", "is", "was", "has", "had", "does", "did", "for", "in", "on", "with", "from",
              "but", "than", "i", "you", "he", "she", "it", "we", "they", "more", "too", "here", "there", "now"}
_IDIOMS = (("ten", "to", "one"), ("out", "of", "ten"), ("two", "can", "play"))  # no counts in them
_DIGITS = re.compile(r"^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th|s|%|[a-z]+)?$")
_MONTHS = {w: i for i, w in enumerate("january february march april may june july august september october "
                                      "november december".split(), 1)} | {"sept": 9}
# may and march are months only where a date is meant: after these words, or beside a day (may 5 · 5 may)
_MONTH_AFTER = {"in", "of", "on", "since", "until", "till", "by", "from", "early", "late", "mid", "last", "next",
                "every", "each", "through", "before", "after", "during", "between"}  # not this / or: this may be
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(am|pm|a\.m\.|p\.m\.)?$")
_PM = {"p.m.", "pm", "p.m"}
_AM = {"a.m.", "am", "a.m"}


def _word_value(token: str) -> tuple[list[int], bool] | None:
    """A number word (or hyphen compound: twenty-one, twenty-first) → its parts' values, ordinal?"""
    parts = token.split("-")
    values, ordinal = [], False
    for i, part in enumerate(parts):
        if part in _UNITS or part in _TENS or part in _SCALES:
            values.append(_UNITS.get(part, _TENS.get(part, _SCALES.get(part))))
        elif part in _ORDINALS and i == len(parts) - 1:
            values.append(_ORDINALS[part])
            ordinal = True
        else:
            return None
    return values, ordinal


def _combine(values: list[int]) -> int:
    """[5, 1000] → 5000; [2, 100, 50] → 250 (the usual scale arithmetic)."""
    total = current = 0
    for v in values:
        if v == 100:
            current = (current or 1) * 100
        elif v >= 1000:
            total += (current or 1) * v
            current = 0
        else:
            current += v
    return total + current


def _starts_new(prev: int | None, v: int) -> bool:
    """Two number words that are two numbers (five six; twenty thirty), not one (twenty five)."""
    if prev is None or v >= 100:
        return False
    return prev < 20 or (prev < 100 and (v >= 10 or prev % 10 != 0))


def _word_run(tokens: list[str], i: int) -> tuple[int, list[int], bool] | None:
    """The number-word run starting at tokens[i] → (end index, values, ordinal), or None."""
    values: list[int] = []
    j, ordinal = i, False
    if tokens[i] == "a" and i + 1 < len(tokens) and tokens[i + 1] in _SCALES:
        values, j = [1], i + 1  # a hundred, a thousand
    while j < len(tokens) and not ordinal:
        word = _word_value(tokens[j])
        if word is None:
            if tokens[j] == "and" and values and values[-1] >= 100 and j + 1 < len(tokens) \
                    and _word_value(tokens[j + 1]):
                j += 1  # two hundred and fifty
                continue
            break
        if values and _starts_new(values[-1], word[0][0]):
            break
        values += word[0]
        ordinal = word[1]
        j += 1
    return (j, values, ordinal) if values else None


def _hour(tokens: list[str], j: int) -> int | None:
    """An hour (1–12) written at tokens[j], as a word or digits."""
    if j >= len(tokens):
        return None
    word = _UNITS.get(tokens[j])
    value = word if word is not None else int(tokens[j]) if tokens[j].isdigit() else None
    return value if value is not None and 1 <= value <= 12 else None


_CLOCK_MINUTES = {5, 10, 20, 25}  # said before past / to without "minutes": five past, ten to, twenty-five to
_RANGE = {"from", "between"}  # from five to ten is a range, not 9:55
_CLOCK_AFTER = {"now", "in", "at", "and", "or", "when", "then", "tonight", "today", "tomorrow", "this", "every", "on",
                "yesterday", "but", "so", "because", "already", "exactly", "sharp", "o", "am", "pm", "a.m.", "p.m."}


def _phrase_time(tokens: list[str], i: int) -> tuple[int, Number] | None:
    """half past nine · (a) quarter to six · ten minutes past seven · ten to five → (end index, time)."""
    j = i + 1 if tokens[i] == "a" else i
    if j >= len(tokens):
        return None
    bare = False
    if tokens[j] in ("half", "quarter"):
        minutes, j = (30 if tokens[j] == "half" else 15), j + 1
    else:
        run = _word_run(tokens, j) if not tokens[j].isdigit() else (j + 1, [int(tokens[j])], False)
        if not run or run[0] >= len(tokens):
            return None
        if tokens[run[0]] in ("minutes", "minute"):
            j, minutes = run[0] + 1, _combine(run[1])
        elif not tokens[j].isdigit() and _combine(run[1]) in _CLOCK_MINUTES and (i == 0 or tokens[i - 1] not in _RANGE):
            j, minutes, bare = run[0], _combine(run[1]), True  # ten to five, twenty past three (no "minutes")
        else:
            return None
    if j >= len(tokens) or tokens[j] not in ("past", "to", "after", "before") or minutes >= 60:
        return None
    hour = _hour(tokens, j + 1)
    if hour is None:
        return None
    after = tokens[j + 2] if j + 2 < len(tokens) else ""
    if bare and after.isalpha() and after not in _CLOCK_AFTER:
        return None  # five to ten minutes, twenty past three people: no clock
    value = hour * 60 + (minutes if tokens[j] in ("past", "after") else -minutes)
    end = j + 2 + (tokens[j + 2: j + 4] == ["o", "'clock"]) * 2
    return end, Number(value, " ".join(tokens[i:end]), "time")


def _clock_suffix(tokens: list[str], j: int, hour: int) -> tuple[int, int] | None:
    """o'clock / a.m. / p.m. after an hour at tokens[j] → (end index, hour on a 24-hour clock)."""
    if tokens[j: j + 2] == ["o", "'clock"]:
        return j + 2, hour
    if j < len(tokens) and tokens[j] in _PM | _AM:
        return j + 1, hour % 12 + (12 if tokens[j] in _PM else 0)
    return None


def _digits(tokens: list[str], i: int) -> tuple[int, Number] | None:
    """A token of digits (1,200 · 3rd · 7:30 · 3pm · 50%), with o'clock / p.m. after it."""
    token = tokens[i]
    clock = _CLOCK.match(token)
    if clock:
        hour, minutes = int(clock[1]), int(clock[2])
        end, suffix = i + 1, clock[3]
        if not suffix and i + 1 < len(tokens) and tokens[i + 1] in _PM | _AM:
            end, suffix = i + 2, tokens[i + 1]
        if suffix:
            hour = hour % 12 + (12 if suffix.startswith("p") else 0)
        return end, Number(hour * 60 + minutes, " ".join(tokens[i:end]), "time")
    m = _DIGITS.match(token)
    if not m:
        return None
    value = float(f"{m[1].replace(',', '')}.{m[2] or 0}")
    if m[3] in ("am", "pm") and value <= 12:
        return i + 1, Number((value % 12 + 12 * (m[3] == "pm")) * 60, token, "time")
    suffix = _clock_suffix(tokens, i + 1, int(value)) if value == int(value) and value <= 12 else None
    if suffix:
        return suffix[0], Number(suffix[1] * 60, " ".join(tokens[i:suffix[0]]), "time")
    if not m[3] and i + 1 < len(tokens) and tokens[i + 1] in _SCALES:  # 7 billion, 1.5 million
        return i + 2, Number(value * _SCALES[tokens[i + 1]], f"{token} {tokens[i + 1]}")
    return i + 1, Number(value, token, "ordinal" if m[3] in ("st", "nd", "rd", "th") else "number")


def _is_pronoun_one(tokens: list[str], i: int) -> bool:
    """'one' that is no count: the one, no one, one of, one another, one day (ある日), one by one."""
    before = tokens[i - 1] if i else ""
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    return before in _ONE_BEFORE or after in _ONE_AFTER or not after.isalpha()


_SPOKEN_BEFORE = {"at", "by", "until", "till", "around", "about", "before", "after", "since", "from"}
_SPOKEN_AFTER = _CLOCK_AFTER | {"i", "you", "he", "she", "we", "they", "it"}  # at seven thirty we left


def _spoken_time(tokens: list[str], i: int) -> tuple[int, Number] | None:
    """seven thirty · eight forty-five · six oh five: an hour word and its minutes, where a clock is meant
    (after *at*, *by*, *until* …, or before a.m. / p.m.); *seven thirty people*, *at seven twenty people*, *about
    five fifty yen* stay two numbers."""
    hour = _UNITS.get(tokens[i], 0)
    if not 1 <= hour <= 12 or i + 1 >= len(tokens):
        return None
    j = i + 1
    oh = tokens[j] in ("oh", "o") and j + 1 < len(tokens)
    run = _word_run(tokens, j + oh)
    if not run:
        return None
    end, values, ordinal = run
    minutes = _combine(values)
    if ordinal or not (1 <= minutes <= 9 if oh else 10 <= minutes < 60):
        return None
    suffix = _clock_suffix(tokens, end, hour)
    before = tokens[i - 1] if i else ""
    after = tokens[end] if end < len(tokens) else ""
    if suffix is None and (before not in _SPOKEN_BEFORE or (after.isalpha() and after not in _SPOKEN_AFTER)):
        return None  # a word after the minutes counts it: at seven twenty people, about five fifty yen
    hour = suffix[1] if suffix else hour
    end = suffix[0] if suffix else end
    return end, Number(hour * 60 + minutes, " ".join(tokens[i:end]), "time")


def _hyphen_time(tokens: list[str], i: int) -> tuple[int, Number] | None:
    """eight-thirty, six-fifteen: an hour and its minutes in one hyphenated word."""
    head, _, rest = tokens[i].partition("-")
    hour, minutes = _UNITS.get(head, 0), _word_value(rest) if rest else None
    if not (1 <= hour <= 12 and minutes and not minutes[1] and 10 <= _combine(minutes[0]) < 60):
        return None
    return i + 1, Number(hour * 60 + _combine(minutes[0]), tokens[i], "time")


def _words(tokens: list[str], i: int) -> tuple[int, Number] | None:
    """A run of number words (five thousand, twenty-first), as a time before o'clock / p.m."""
    run = _word_run(tokens, i)
    if not run:
        return None
    end, values, ordinal = run
    value = _combine(values)
    if tokens[i:end] == ["one"] and _is_pronoun_one(tokens, i):
        return None
    if tokens[i:end] in (["first"], ["second"]):
        if tokens[i] == "second" and (i == 0 or tokens[i - 1] not in ("the", "my", "his", "her", "our", "their")):
            return None  # a second (秒), seconds, second-hand …
        return end, Number(value, tokens[i], "ordinal", _FIRST if value == 1 else ())
    suffix = _clock_suffix(tokens, end, value) if not ordinal and 1 <= value <= 12 else None
    if suffix:
        return suffix[0], Number(suffix[1] * 60, " ".join(tokens[i:suffix[0]]), "time")
    return end, Number(value, " ".join(tokens[i:end]), "ordinal" if ordinal else "number",
                       _SAID_OTHERWISE.get(value, ()) if not ordinal else ())


def _day(tokens: list[str], j: int) -> int | None:
    """A day of the month (1–31) written at tokens[j]: 3 · 3rd · third · twenty-first."""
    if j < 0 or j >= len(tokens):
        return None
    m = _DIGITS.match(tokens[j])
    if m and not m[2] and (m[3] is None or m[3] in ("st", "nd", "rd", "th")) and "," not in m[1]:
        value = int(m[1])
    else:
        word = _word_value(tokens[j])
        if word is None or not word[1]:
            return None  # a day in words is an ordinal (the third), never a bare count
        value = _combine(word[0])
    return value if 1 <= value <= 31 else None


def _month(tokens: list[str], i: int) -> Number | None:
    """A month name at tokens[i] (may and march only where a date is meant), as a Number of kind month."""
    month = _MONTHS.get(tokens[i])
    if month is None:
        return None
    if tokens[i] in ("may", "march"):
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        day_before = _day(tokens, i - 1) is not None and not after.isalpha()  # 3 may 2001, not 18 may drive
        if before not in _MONTH_AFTER and _day(tokens, i + 1) is None and not day_before:
            return None
    return Number(month, tokens[i], "month")


def _days(tokens: list[str], found: list[tuple[int, int, Number]]) -> list[Number]:
    """The numbers found, with each day of a date as kind day: beside a month (October 3rd, 3 May, the 3rd
    of October), an ordinal after *on the* (on the 31st), or an ordinal that ends a range of days (from August
    13th to 16th)."""
    months = {start for start, _, n in found if n.kind == "month"}
    ends = {end for _, end, n in found if n.kind == "month"}
    out = []
    for start, end, n in found:
        beside = end == start + 1 and _day(tokens, start) is not None and (
            start in ends or end in months
            or (tokens[end: end + 1] == ["of"] and end + 1 in months))
        after = tokens[end] if end < len(tokens) else ""
        on_the = n.kind == "ordinal" and tokens[max(0, start - 2): start] == ["on", "the"] \
            and (not after.isalpha() or after in ("of", "and", "or"))  # on the 31st, not on the fifth floor
        before = [t for t in tokens[max(0, start - 2): start] if t != "the"]
        ranged = n.kind == "ordinal" and bool(out) and out[-1].kind == "day" and before[-1:] in (
            ["to"], ["until"], ["till"], ["through"], ["and"], ["or"], ["-"]) \
            and (not after.isalpha() or after in ("of", "and", "or"))  # from August 13th to 16th, not to the 5th floor
        day = n.kind in ("number", "ordinal") and (beside or on_the or ranged) and n.value == int(n.value) \
            and 1 <= n.value <= 31
        out.append(Number(n.value, n.text, "day", n.alternatives) if day else n)
    return out


_CURRENCY_AFTER = {"yen", "dollars", "dollar", "cents", "euros", "euro", "pounds", "percent", "%"}


def english_numbers(text: str) -> list[Number]:
    """Every number in an English sentence (raw or corpus tokens), with its unit in `text` (five thousand yen)."""
    tokens = normalize_en(text).split()
    found: list[tuple[int, int, Number]] = []  # (start, end, number)
    i = 0
    while i < len(tokens):
        if tuple(tokens[i: i + 3]) in _IDIOMS:
            i += 3
            continue
        month = _month(tokens, i)
        if month:
            found.append((i, i + 1, month))
            i += 1
            continue
        hit = (_phrase_time(tokens, i) or _digits(tokens, i) or _hyphen_time(tokens, i) or _spoken_time(tokens, i)
               or _words(tokens, i))
        if hit is None:
            i += 1
            continue
        end, number = hit
        after = tokens[end] if end < len(tokens) else ""
        if i and tokens[i - 1] == "$":
            number = Number(number.value, "$" + number.text, number.kind, unit="$")
        elif number.kind == "number" and after in _CURRENCY_AFTER:
            number = Number(number.value, f"{number.text} {after}", number.kind, unit=after)
        elif number.kind in ("number", "ordinal") and after.isalpha() and (not i or tokens[i - 1] not in _SPOKEN_BEFORE):
            # a word after a count says what it counts (three tickets); after *at seven* it may be anything
            number = Number(number.value, number.text, number.kind, number.alternatives, unit=after)
        found.append((i, end, number))
        i = end
    return _days(tokens, found)


# -- Japanese ---------------------------------------------------------------------------------

_KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_KANJI_SMALL = {"十": 10, "百": 100, "千": 1000}
_KANJI_LARGE = {"万": 10**4, "億": 10**8, "兆": 10**12}
NUMERAL_CHAR = r"[\d.〇零一二三四五六七八九十百千万億兆]"  # a character a Japanese numeral may hold
NUMERAL = r"(?:\d+(?:\.\d+)?|[〇零一二三四五六七八九十百千万億兆])+"
_JA_NUMBER = re.compile(NUMERAL)
_JA_TIME = re.compile(rf"(午前|午後)?({NUMERAL})時(?!間|的|期|代|限)(?:({NUMERAL})分|(半))?(前)?")
JA_MONTH = re.compile(rf"({NUMERAL})月(?!曜)")  # 十月 · １０月 (not ３か月 · ３ヶ月: months counted)
_JA_CLOCK = re.compile(r"(?<![\d.])(\d{1,2}):(\d{2})(?!\d)")
_GROUPED = re.compile(r"(?<=\d)[,、](?=\d{3}(?!\d))")  # 5,000 · １、０００ (the corpus writes 、 between groups)
# words whose kanji numerals count nothing; they would stand in for (or against) a real number
_NOT_NUMBERS = ("一緒", "一般", "一応", "一体", "一生", "一層", "一斉", "一旦", "一致", "一流", "一瞬", "一気", "一切",
                "一向", "唯一", "統一", "同一", "万一", "万歳", "万年筆", "千葉", "百貨店", "八百屋", "一人で",
                "一方", "一部", "一杯", "一言", "一時的")
_KANA = {"ひとつ": 1, "ふたつ": 2, "みっつ": 3, "よっつ": 4, "いつつ": 5, "むっつ": 6, "ななつ": 7, "やっつ": 8,
         "ここのつ": 9, "ひとり": 1, "ふたり": 2}
_NOT_NUMBER = re.compile("|".join(_NOT_NUMBERS))
_KANA_NUMBER = re.compile("|".join(_KANA))


def japanese_value(numeral: str) -> float:
    """五千 → 5000, 三百五十 → 350, 一万二千 → 12000, ５千 → 5000, 二〇二〇 → 2020, 1.5万 → 15000."""
    total, section, current = 0.0, 0.0, None
    for token in re.findall(r"\d+(?:\.\d+)?|.", unicodedata.normalize("NFKC", numeral)):
        if token[0].isdigit():
            current = float(token)
        elif token in _KANJI_DIGITS:
            current = (current or 0) * 10 + _KANJI_DIGITS[token]  # positional: 二〇二〇
        elif token in _KANJI_SMALL:
            section += (1 if current is None else current) * _KANJI_SMALL[token]
            current = None
        elif token in _KANJI_LARGE:
            total += (section + (current or 0) or 1) * _KANJI_LARGE[token]
            section, current = 0.0, None
    return total + section + (current or 0)


def _japanese_text(text: str) -> str:
    """Width-normalised, spaces out (corpus tokens), digit groups joined: the form the patterns read."""
    return _GROUPED.sub("", unicodedata.normalize("NFKC", text).replace(" ", ""))


def _time(m: re.Match) -> Number:
    hour, minutes = japanese_value(m[2]), 30 if m[4] else japanese_value(m[3]) if m[3] else 0
    value = hour * 60 + (-minutes if m[5] and minutes else minutes)  # ８時１５分前: 15 minutes to 8
    if m[1] == "午後" and hour < 12:
        value += 720
    return Number(value, m[0], "time")


def japanese_numbers(text: str) -> list[Number]:
    """Every number in a Japanese sentence (raw or corpus tokens), in order; times first, then counts."""
    text = _japanese_text(text)
    found: list[tuple[int, Number]] = []

    def take(pattern: re.Pattern, make) -> None:
        nonlocal text
        for m in pattern.finditer(text):
            n = make(m)
            if n is not None and n.kind == "number":  # the counter after it, or 第 before it
                unit = "第" if text[m.start() - 1: m.start()] == "第" else text[m.end(): m.end() + 3]
                n = Number(n.value, n.text, n.kind, n.alternatives, unit)
            found.append((m.start(), n))
        text = pattern.sub(lambda m: "・" * len(m[0]), text)  # same length: later offsets stay true

    take(_JA_TIME, _time)
    take(_JA_CLOCK, lambda m: Number(int(m[1]) * 60 + int(m[2]), m[0], "time"))
    take(JA_MONTH, lambda m: Number(japanese_value(m[1]), m[0], "month" if 1 <= japanese_value(m[1]) <= 12
                                     else "number"))
    take(_NOT_NUMBER, lambda m: None)
    take(_KANA_NUMBER, lambda m: Number(_KANA[m[0]], m[0]))
    take(_JA_NUMBER, lambda m: Number(japanese_value(m[0]), m[0]))
    return [n for _, n in sorted(found, key=lambda x: x[0]) if n is not None]


def unmatched(src: str, hyp: str) -> tuple[list[Number], list[Number]]:
    """(the source's numbers the output does not say, the output's numbers the source does not say); a source
    number said with a word (first → 最初) counts as said. Shared by the `number` check and mt/renumber.py."""
    wanted = english_numbers(src)
    if not wanted:
        return [], []
    found = japanese_numbers(hyp)
    flat = unicodedata.normalize("NFKC", hyp).replace(" ", "")
    missing = [n for n in wanted if not any(same(n, f) for f in found) and not any(a in flat for a in n.alternatives)]
    return missing, [f for f in found if not any(same(f, n) for n in wanted)]
