"""Corpora, tokenizers, vocabulary, caching and batching."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mt import config, corpora, data
from mt.cli import main
from mt.errors import MTError
from mt.text import Pipeline, balance_brackets, detokenize_ja, known_spelling, normalize_en, segment_ja, train_sentencepiece
from mt.vocab import BOS, EOS, PAD, SPECIALS, Vocab
from tests.conftest import MIRROR

needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason="corpus mirror ../shared/corpora not present")


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


# -- corpora -------------------------------------------------------------------------------

@needs_mirror
def test_fetch_with_mirror_and_corrupted_copy(tmp_path, capsys):
    assert main(["corpus", "fetch", "small_parallel_enja", "--mirror", str(MIRROR), "--force"]) == 0
    bad = tmp_path / "mirror" / "small_parallel_enja"
    shutil.copytree(MIRROR / "small_parallel_enja", bad)
    os.chmod(bad / "dev.ja", 0o644)
    with open(bad / "dev.ja", "a") as f:
        f.write("改ざん\n")
    os.environ["MT_CACHE"], old = str(tmp_path / "cache"), os.environ["MT_CACHE"]
    try:
        assert main(["corpus", "fetch", "small_parallel_enja", "--mirror", str(tmp_path / "mirror")]) == 2
        err = capsys.readouterr().err
        assert "checksum mismatch" in err and "dev.ja" in err
        cached = tmp_path / "cache" / "corpora" / "small_parallel_enja"
        assert not (cached / "dev.ja").exists() and not list(cached.glob("*.tmp"))
    finally:
        os.environ["MT_CACHE"] = old


def test_corpus_list(capsys):
    assert main(["corpus", "list"]) == 0
    out = capsys.readouterr().out
    assert "small_parallel_enja" in out and "tatoeba_jpn_eng" in out and "sample" in out


def test_tsv_split_is_deterministic_and_keeps_identical_english_together(tmp_path):
    tsv = tmp_path / "c.tsv"
    rows = [f"Sentence number {i % 120}.\t文{i}。" for i in range(600)]
    tsv.write_text("\n".join(rows) + "\n")
    a, b = tmp_path / "a", tmp_path / "b"
    corpora.split_tsv(tsv, a, held_out=10)
    corpora.split_tsv(tsv, b, held_out=10)
    seen = {}
    for split in corpora.SPLITS:
        assert (a / f"{split}.en").read_text() == (b / f"{split}.en").read_text()
        for en in (a / f"{split}.en").read_text().splitlines():
            assert seen.setdefault(en, split) == split
    assert len(set(seen.values())) == 3


def _write_corpus(folder: Path, en: str, ja: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split in corpora.SPLITS:
        (folder / f"{split}.en").write_bytes(en.encode() if isinstance(en, str) else en)
        (folder / f"{split}.ja").write_bytes(ja.encode() if isinstance(ja, str) else ja)


def test_bad_corpus_errors(tmp_path, capsys):
    with pytest.raises(MTError, match="neither a known name"):
        corpora.resolve(str(tmp_path / "nothing"))
    uneven = tmp_path / "uneven"
    _write_corpus(uneven, "a\nb\n", "あ\n")
    with pytest.raises(MTError, match=r"line counts differ: .*train.en has 2, .*train.ja has 1"):
        corpora.resolve(str(uneven))
    empty = tmp_path / "empty"
    _write_corpus(empty, "", "")
    with pytest.raises(MTError, match="empty corpus"):
        corpora.resolve(str(empty))
    missing = tmp_path / "missing"
    _write_corpus(missing, "a\n", "あ\n")
    (missing / "dev.ja").unlink()
    with pytest.raises(MTError, match="corpus file missing: .*dev.ja"):
        corpora.resolve(str(missing))
    broken = tmp_path / "broken"
    _write_corpus(broken, b"fine\n\xff\xfe bad\n", "あ\nい\n".encode())
    cfg = config.build({"data": {"corpus": str(broken), "tgt_tokenizer": "janome", "min_count": 1}})
    with pytest.raises(MTError, match=r"train.en:2: invalid UTF-8"):
        data.prepare(cfg.data, corpora.resolve(str(broken))[0])
    assert main(["train", "--corpus", str(uneven), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mt: error: line counts differ") and "Traceback" not in err


def test_unknown_corpus_name(capsys):
    assert main(["corpus", "fetch", "nope"]) == 2
    assert "unknown corpus 'nope'" in capsys.readouterr().err


# -- cache and batches ---------------------------------------------------------------------

def test_encoded_cache_is_reused():
    cfg = config.build({"data": {"corpus": "sample", "min_count": 1, "tgt_tokenizer": "janome"}})
    folder, _ = corpora.resolve("sample")
    first = data.prepare(cfg.data, folder, log=lambda m: None)
    messages = []
    second = data.prepare(cfg.data, folder, log=messages.append)
    assert first.folder == second.folder and messages == []
    train = second.split("train")
    assert len(train) > 200 and train.src.dtype == np.int32


def test_batches_respect_budget_are_deterministic_and_cover_all():
    rng = np.random.default_rng(0)
    src = rng.integers(1, 40, 2000)
    tgt = np.maximum(1, (src * 1.3 + rng.integers(-3, 4, 2000)).astype(int))  # correlated, like real pairs
    a = data.make_batches(src, tgt, 512, seed=3, epoch=1)
    b = data.make_batches(src, tgt, 512, seed=3, epoch=1)
    c = data.make_batches(src, tgt, 512, seed=3, epoch=2)
    assert all((x == y).all() for x, y in zip(a, b)) and len(a) == len(b)
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(a, c))
    assert sorted(np.concatenate(a).tolist()) == list(range(2000))
    for batch in a:
        assert len(batch) * (max(src[batch].max(), tgt[batch].max()) + 1) <= 512 or len(batch) == 1
    padded = sum(len(x) * (src[x].max() + tgt[x].max() + 2) for x in a)
    real = int(src.sum() + tgt.sum() + 2 * len(src))
    assert padded / real < 1.15  # length bucketing keeps padding small
    assert len(data.make_batches(src, tgt, 512, max_len=20, shuffle=False)) < len(a)


def test_collate_adds_bos_eos_and_pads():
    enc = data.Encoded(np.array([5, 6, 7, 8], np.int32), np.array([0, 3, 4]),
                       np.array([9, 10, 11], np.int32), np.array([0, 1, 3]))
    batch = data.collate(enc, np.array([0, 1]))
    assert batch.src.tolist() == [[5, 6, 7, EOS], [8, EOS, PAD, PAD]]
    assert batch.tgt_in.tolist() == [[BOS, 9, PAD], [BOS, 10, 11]]
    assert batch.tgt_out.tolist() == [[9, EOS, PAD], [10, 11, EOS]]
    assert batch.n_tokens == 5


def test_config_round_trip_and_errors():
    cfg = config.build({"model": {"type": "seq2seq", "attention": "bahdanau"}}, ["train.lr=3e-4", "decode.beam=4"])
    assert cfg.model.attention == "bahdanau" and cfg.train.lr == 3e-4 and cfg.decode.beam == 4
    import tomllib

    again = config.build(tomllib.loads(config.to_toml(cfg)))
    assert again == cfg
    with pytest.raises(MTError, match="unknown key 'atention'"):
        config.build({"model": {"type": "seq2seq", "atention": "luong"}})
    with pytest.raises(MTError, match="unknown section"):
        config.build({"trian": {}})
    with pytest.raises(MTError, match="unknown model"):
        config.build({}, model_type="lstm")
