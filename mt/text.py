"""Text pipelines: English normalizer, janome, sentencepiece, Japanese detokenizer.

A `Pipeline` turns one side's sentence into model tokens and model tokens back into words:
    raw or pre-tokenized text --pre--> words --sentencepiece (optional)--> tokens
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import sentencepiece as spm
from janome.tokenizer import Tokenizer

from mt.errors import MTError

# small_parallel_enja's English: Stanford-tokenized, lowercased; clitics split before the
# apostrophe ("don 't", "i 'm", "o 'clock"), double quotes written as '' .
_CLITIC = r"'(?:t|s|m|d|ll|ve|re|clock|em)(?![\w])"
_TOKEN = re.compile(
    r"''"
    r"|\.\.\."
    r"|(?:mr|mrs|ms|dr|st|jr|sr|vs|etc|no)\.(?=\s|$)"
    r"|[a-z](?:\.[a-z])+\.?"  # u.s. p.m. o.k.
    r"|\d+(?:[.,:]\d+)*[^\W_]*(?:-[^\W_]+)*"
    r"|" + _CLITIC +
    r"|[^\W_]+(?:-[^\W_]+)*"
    r"|\S"
)
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‛": "'", "`": "'", "´": "'",
                         "“": '"', "”": '"', "„": '"', "«": '"', "»": '"',
                         "–": "-", "—": "-", "…": "..."})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\ufeff]")


_REPEATED_END = re.compile(r"([!?])[!?]+")  # typed "!!!" / "?!" → one mark, as the corpus writes it
_WH = {"what", "where", "when", "who", "whom", "whose", "why", "how", "which"}
_AUX = {"is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "will", "would", "shall", "should",
        "may", "might", "must", "have", "has", "had", "isn", "aren", "wasn", "weren", "don", "doesn", "didn",
        "won", "wouldn", "couldn", "shouldn", "haven", "hasn"}
_IMPERATIVE = {"do", "don", "have"}  # "do it now", "don't worry", "have a nice day": questions only before a person
_PERSON = {"i", "you", "he", "she", "we", "they"}
_PRONOUN = _PERSON | {"it", "there"}
_DETERMINER = {"this", "that", "these", "those", "the", "a", "an", "my", "your", "his", "her", "our", "their"}


def _end_mark(tokens: list[str]) -> str:
    """The mark an unpunctuated sentence gets: '?' for wh- and yes/no questions, else '.'."""
    if tokens[0] in _WH:
        return "?"
    rest = tokens[2:] if tokens[1:2] == ["'t"] else tokens[1:]  # "isn 't it …": look past the clitic
    subject = rest[0] if rest else ""
    if tokens[0] in _IMPERATIVE:
        return "?" if subject in _PERSON else "."
    if tokens[0] in _AUX and (subject in _PRONOUN or subject in _DETERMINER):
        return "?"
    return "."


def normalize_en(text: str) -> str:
    """Raw English → small_parallel_enja's convention (idempotent on that corpus's English).

    Every corpus sentence ends in . ? ! (or a closing quote after one), so typed text without a final
    mark gets one ("what time is it" → "what time is it ?"), and repeated marks become one."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = _CONTROL.sub(" ", text).lower()
    text = _REPEATED_END.sub(r"\1", text.replace('"', " '' "))
    text = re.sub(r"(?<=\w)'(?=\w)", " '", text)  # don't → don 't ; o'clock → o 'clock
    tokens = _TOKEN.findall(text)
    if tokens and tokens[-1][-1:].isalnum():
        tokens.append(_end_mark(tokens))
    return " ".join(tokens)


@lru_cache(maxsize=1)
def _janome():
    return Tokenizer(wakati=True)


def segment_ja(text: str) -> list[str]:
    """Raw Japanese → words with janome (IPADIC, the segmentation MeCab gives). Spaces between Japanese words go
    first, so a pre-tokenized line segments as its plain text does (a ja-en model trained on small_parallel_enja's
    words then knows the words of the raw Japanese it is given)."""
    text = detokenize_ja(unicodedata.normalize("NFKC", text).split())
    return [w for w in _janome().tokenize(text) if w.strip()]


_ASCII_WORD = re.compile(r"[A-Za-z0-9]")


def detokenize_ja(words: Iterable[str]) -> str:
    """Japanese words → natural text: no spaces, except between two Latin/digit words."""
    out = ""
    for w in words:
        if out and _ASCII_WORD.match(w[:1]) and _ASCII_WORD.match(out[-1:]):
            out += " "
        out += w
    return out


_CLITIC_WORD = re.compile(_CLITIC)
_NO_SPACE_BEFORE = {".", ",", "!", "?", ";", ":", "...", ")", "%"}


def detokenize_en(words: Iterable[str]) -> str:
    """English words as the normalizer writes them ("i 'm here ." , "'' hi ''") → text ("I'm here.", '"hi"'):
    marks and clitics joined to the word before, quotes to the words inside, the first letter and "I" capitalised."""
    out, quoted, glue_next = "", False, False
    for w in words:
        glue = w in _NO_SPACE_BEFORE or bool(_CLITIC_WORD.fullmatch(w))
        if w == "''":
            w, quoted = '"', not quoted
            glue = not quoted  # a closing quote joins the word before it, an opening one the word after it
        if out and not glue and not glue_next:
            out += " "
        out += "I" if w == "i" else w
        glue_next = (w == '"' and quoted) or w == "("
    return out[:1].upper() + out[1:]


_SPELLINGS = [  # British → American, tried only on words a vocabulary lacks
    (re.compile(r"our"), "or"),  # colour, favourite, neighbours
    (re.compile(r"is(e|ed|es|ing|ation|ations)$"), r"iz\1"),  # realise, organisation
    (re.compile(r"yse(d|s)?$"), r"yze\1"),  # analyse
    (re.compile(r"ll(ed|ing|er|ers)$"), r"l\1"),  # cancelled, travelling
    (re.compile(r"tre(s?)$"), r"ter\1"),  # centre, theatre
    (re.compile(r"ogue(s?)$"), r"og\1"),  # catalogue
]
_SPELLING_WORDS = {"grey": "gray", "programme": "program", "tyre": "tire", "cheque": "check", "mum": "mom",
                   "maths": "math", "jewellery": "jewelry", "aluminium": "aluminum"}


def known_spelling(word: str, known) -> str:
    """`word` itself if `known` has it, else its American spelling if `known` has that, else `word`.

    Word-level vocabularies built from one variety of English (small_parallel_enja's is American) turn
    the other variety's spellings into <unk>: cancelled, favourite, centre."""
    if word in known:
        return word
    candidates = [_SPELLING_WORDS.get(word, word)] + [pattern.sub(repl, word) for pattern, repl in _SPELLINGS]
    return next((c for c in candidates if c != word and c in known), word)


_CLOSING = {"」": "「", "』": "『", "）": "（", ")": "("}
_OPENING = set(_CLOSING.values())


def balance_brackets(words: list[str]) -> list[str]:
    """Drop bracket words that have no partner: 「すぐ 帰る と 言っ た → すぐ 帰る と 言っ た.

    A model that opens a quotation sometimes never closes it (or the reverse); a lone bracket reads
    as an error, and there is no telling where its partner belongs, so it goes."""
    stack: list[int] = []
    unmatched: set[int] = set()
    for i, w in enumerate(words):
        if w in _OPENING:
            stack.append(i)
        elif w in _CLOSING:
            if stack and words[stack[-1]] == _CLOSING[w]:
                stack.pop()
            else:
                unmatched.add(i)
    unmatched.update(stack)
    return [w for i, w in enumerate(words) if i not in unmatched] if unmatched else words


def pre_tokenize(text: str, method: str) -> list[str]:
    """One side's first step: text → words."""
    if method == "en":
        return normalize_en(text).split()
    if method == "space":
        return text.split()
    if method == "janome":
        return segment_ja(text)
    if method == "none":
        return [text.strip()] if text.strip() else []
    raise MTError(f"unknown tokenizer {method!r}; valid: en, space, janome, none")


class Pipeline:
    """One side's tokenization: pre-tokenizer plus an optional sentencepiece model."""

    def __init__(self, pre: str, sp_model: bytes | None = None) -> None:
        self.pre = pre
        self.sp_model = sp_model
        self._sp = None
        if sp_model is not None:
            self._sp = spm.SentencePieceProcessor(model_proto=sp_model)

    def tokenize(self, text: str) -> list[str]:
        """A sentence → model tokens."""
        words = pre_tokenize(text, self.pre)
        if self._sp is None:
            return words
        return self._sp.encode(" ".join(words), out_type=str)

    def words(self, tokens: list[str]) -> list[str]:
        """Model tokens → words (undo sentencepiece; words as `pre` produced them)."""
        if self._sp is None:
            return tokens
        return self._sp.decode_pieces(tokens).split()


def train_sentencepiece(lines: Iterable[str], pre: str, vocab_size: int, model_type: str,
                        character_coverage: float) -> bytes:
    """Train sentencepiece on pre-tokenized training sentences; return the model bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.txt"
        with open(path, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(" ".join(pre_tokenize(line, pre)) + "\n")
        spm.SentencePieceTrainer.train(
            input=str(path), model_prefix=str(Path(tmp) / "sp"), vocab_size=vocab_size,
            model_type=model_type, character_coverage=character_coverage,
            pad_id=-1, unk_id=0, bos_id=-1, eos_id=-1, hard_vocab_limit=False,
            input_sentence_size=2_000_000, shuffle_input_sentence=True, minloglevel=2,
            num_threads=2,
        )
        return (Path(tmp) / "sp.model").read_bytes()
