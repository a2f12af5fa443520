"""Vocabulary: specials, min_count, JSON round trip (mt/vocab.py)."""

from __future__ import annotations

from collections import Counter

from mt import corpora
from mt.vocab import BOS, EOS, PAD, SPECIALS, Vocab
from tests.helpers import needs_mirror

# -- vocabulary ----------------------------------------------------------------------------

def test_vocab_specials_min_count_and_json():
    v = Vocab.build(Counter({"a": 3, "b": 2, "c": 1}), min_count=2)
    assert v.itos[:4] == list(SPECIALS) and (PAD, BOS, EOS) == (0, 2, 3)
    assert v.itos[4:] == ["a", "b"] and v.encode(["c"]) == [1]
    assert Vocab.from_json(v.to_json()).itos == v.itos
    assert v.decode([BOS, 4, 5, EOS, 4]) == ["a", "b"]
    assert len(Vocab.build(Counter({"a": 3, "b": 2}), max_size=1)) == 5


@needs_mirror
def test_small_parallel_enja_vocab_sizes():
    """min_count 2 on train: 4105 English and 4902 Japanese words plus 4 specials."""
    folder = corpora.fetch("small_parallel_enja")
    for path, size in ((folder / "train.en", 4105), (folder / "train.ja", 4902)):
        counts = Counter(w for line in corpora.read_lines(path) for w in line.split())
        assert len(Vocab.build(counts, min_count=2)) == size + 4
