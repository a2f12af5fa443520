"""Encoded cache, token-budget batches, collate (mt/data.py)."""

from __future__ import annotations

import numpy as np

from mt import config, corpora, data
from mt.vocab import BOS, EOS, PAD

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
