"""Tokenizers, normalizer, Japanese segmentation and detokenizer, sentencepiece (mt/text.py)."""

from __future__ import annotations

import pytest

from mt.text import Pipeline, balance_brackets, detokenize_ja, known_spelling, normalize_en, segment_ja, train_sentencepiece
from tests.helpers import MIRROR, needs_mirror

# -- English normalizer --------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("I can't find my umbrella.", "i can 't find my umbrella ."),
    ("He didn't come.", "he didn 't come ."),
    ("I'm a student!", "i 'm a student !"),
    ("Don't you think it's 10,000 yen?", "don 't you think it 's 10,000 yen ?"),
    ('"Stop," he said.', "'' stop , '' he said ."),
    ("It’s six o’clock.", "it 's six o 'clock ."),
    ("We'll go at 5 p.m. with Mr. Smith.", "we 'll go at 5 p.m. with mr. smith ."),
    ("  a   well-known   fact…", "a well-known fact ..."),
    ("She's got a 10-minute break; they've left.", "she 's got a 10-minute break ; they 've left ."),
    ("Thank you so much!!!", "thank you so much !"),  # typed repeats → the corpus's single mark
    ("Really?!", "really ?"),
    ("what time is it", "what time is it ?"),  # no final mark: one is added, as every corpus line has
    ("Isn't it cold", "isn 't it cold ?"),
    ("Is the store open", "is the store open ?"),
    ("Do you like tea", "do you like tea ?"),
    ("Do it now", "do it now ."),  # imperatives keep a full stop
    ("Don't worry", "don 't worry ."),
    ("Have a nice day", "have a nice day ."),
    ("I love you", "i love you ."),
])
def test_normalize_en(raw, expected):
    assert normalize_en(raw) == expected
    assert normalize_en(expected) == expected  # idempotent


@needs_mirror
@pytest.mark.parametrize("split", ["dev", "test"])
def test_normalizer_leaves_corpus_english_unchanged(split):
    lines = (MIRROR / "small_parallel_enja" / f"{split}.en").read_text().splitlines()
    changed = [line for line in lines if normalize_en(line) != line]
    assert changed == []


def test_known_spelling_only_maps_unknown_words_to_known_ones():
    known = {"color", "canceled", "realize", "theater", "traveling", "favorite", "gray", "tour"}
    for british, american in [("colour", "color"), ("cancelled", "canceled"), ("realise", "realize"),
                               ("theatre", "theater"), ("travelling", "traveling"), ("favourite", "favorite"),
                               ("grey", "gray")]:
        assert known_spelling(british, known) == american
    assert known_spelling("tour", known) == "tour"  # known words stay
    assert known_spelling("flour", known) == "flour"  # "flor" is not known: stays
    assert known_spelling("advise", known) == "advise"


def test_japanese_segmentation_and_detokenizer():
    words = segment_ja("私は学生です。")
    assert "".join(words) == "私は学生です。" and len(words) >= 4
    assert detokenize_ja(["私", "は", "iPhone", "12", "を", "買", "っ", "た", "。"]) == "私はiPhone 12を買った。"


@pytest.mark.parametrize("plain", ["彼は苦しい生活を送った。", "ごめんなさい。早く帰らなくちゃ。", "TomとNew Yorkに行く。"])
def test_janome_reads_a_pre_tokenized_line_as_its_plain_text(plain):
    """small_parallel_enja's own segmentation (送 っ た) is not janome's (送っ た): a model whose Japanese side janome
    reads (a ja-en model) must see the same words in training, from the corpus's tokens, as from raw input."""
    tokenized = " ".join(segment_ja(plain)).replace("送っ", "送 っ").replace("帰ら", "帰 ら")
    assert segment_ja(tokenized) == segment_ja(plain)
    assert Pipeline("janome").tokenize(tokenized) == Pipeline("janome").tokenize(plain)


@pytest.mark.parametrize("words", [
    "彼 は 「 すぐ 戻る と 言っ た 。", "すぐ 戻る 」 と 言っ た 。", "「 a 」 「 b", "（ 「 x ） 」", "「 『 本 』 」 を 読む",
])
def test_balance_brackets_leaves_only_pairs(words):
    words = words.split()
    out = balance_brackets(words)
    stack = []
    for w in out:  # every bracket left has its partner, properly nested
        if w in "「『（(":
            stack.append(w)
        elif w in "」』）)":
            assert stack and stack.pop() == {"」": "「", "』": "『", "）": "（", ")": "("}[w]
    assert not stack
    assert [w for w in words if w not in "「」『』（）()"] == [w for w in out if w not in "「」『』（）()"]
    if words == "「 『 本 』 」 を 読む".split():
        assert out == words  # nothing to fix, nothing changed


def test_sentencepiece_round_trip():
    lines = ["i like tea .", "tom likes fish .", "we like music ."] * 30
    model = train_sentencepiece(lines, "space", 40, "unigram", 1.0)
    pipe = Pipeline("space", model)
    tokens = pipe.tokenize("tom likes tea .")
    assert pipe.words(tokens) == ["tom", "likes", "tea", "."]
