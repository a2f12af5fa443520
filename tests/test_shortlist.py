"""The target-vocabulary shortlist (mt/shortlist.py): the table, the ids a batch decodes over, and decoding over them."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mt import config, shortlist
from mt.cli import main
from mt.data import Encoded, pad_sources
from mt.ensemble import Ensemble
from mt.errors import MTError
from mt.search import beam_search, greedy, max_lengths
from mt.translate import Translator
from mt.vocab import EOS, SPECIALS
from tests.helpers import cli_translate, one_line_error, train_tiny


def encoded(pairs: list[tuple[list[int], list[int]]]) -> Encoded:
    src, tgt = [p[0] for p in pairs], [p[1] for p in pairs]
    off = lambda rows: np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)  # noqa: E731
    return Encoded(np.array(sum(src, []), np.int32), off(src), np.array(sum(tgt, []), np.int32), off(tgt))


def test_a_words_candidates_are_the_targets_its_pairs_hold_most_often():
    # source 4 is in three pairs: target 20 in all three, 10 in two, 11 in one; source 7 in one pair only
    pairs = [([4, 5], [10, 20]), ([4, 6], [10, 20]), ([5, 6], [11, 20]), ([6, 7], [12, 20]), ([4], [11, 20])]
    table = shortlist.build(encoded(pairs), src_size=8, tgt_size=21, keep=3)
    assert table.best[4].tolist() == [20, 10, 11]  # p(t | 4) = 1, 2/3, 1/3
    assert table.by_count[0] == 20 and set(table.by_count[1:3].tolist()) == {10, 11}  # most frequent first
    assert (table.best[3] == -1).all()  # a word never seen has no candidates
    assert table.best[7].tolist() == [12, 20, -1]  # ties in id order


def test_a_batch_decodes_over_the_specials_the_frequent_words_and_its_words_candidates():
    table = shortlist.Shortlist(torch.tensor([9, 8, 7, 6, 5, 4]),
                                torch.tensor([[-1, -1]] * 4 + [[12, 14], [13, -1], [15, 16]]))
    ids, blocked = table.ids(torch.tensor([[4, 5, 0], [6, 0, 0]]), first=2, best=1)
    assert ids.tolist() == sorted({*range(len(SPECIALS)), 9, 8, 12, 13, 15})  # 14 and 16: second candidates
    assert ids[EOS] == EOS  # search's specials keep their ids in the shortlist's positions
    own = [{int(i) for i, b in zip(ids, row) if b == 0} for row in blocked]
    assert own == [{*range(len(SPECIALS)), 9, 8, 12, 13}, {*range(len(SPECIALS)), 9, 8, 15}]  # each sentence its own
    with pytest.raises(MTError, match="at most 2 candidates"):
        table.ids(torch.tensor([[4]]), first=2, best=3)


def test_restricted_log_probs_are_the_models_over_each_sentences_own_words(tiny_run):
    tr = _translator(tiny_run)
    src, src_len = pad_sources(_sources(tr)[:2])
    ids = torch.tensor([0, 1, 2, 3, 7, 9, 15, 16])  # not contiguous: positions are not ids
    blocked = torch.zeros(2, len(ids))
    blocked[1, 5:] = float("-inf")  # the second sentence's shortlist lacks ids 9, 15 and 16
    full, _ = tr.model.decode_step(torch.full((2,), 2), tr.model.encode(src, src_len))
    with shortlist.restricted(tr.model, (ids, blocked)) as model:
        logp, _ = model.decode_step(torch.full((2,), 2), model.encode(src, src_len))  # BOS is position 2
    assert torch.allclose(logp[0], full[0, ids].log_softmax(-1), atol=1e-5)
    assert torch.allclose(logp[1, :5], full[1, ids[:5]].log_softmax(-1), atol=1e-5)
    assert torch.isinf(logp[1, 5:]).all()


def test_the_restriction_ends_when_decoding_fails(tiny_run):
    tr = _translator(tiny_run)
    with pytest.raises(RuntimeError), shortlist.restricted(tr.model, (torch.arange(8), torch.zeros(1, 8))):
        assert tr.model.restricted is not None
        raise RuntimeError("a failing batch")
    assert tr.model.restricted is None


def test_a_sentences_translation_does_not_depend_on_its_batch(tiny_run):
    tr = _translator(tiny_run)
    tr.decode = replace(tr.decode, shortlist=(5, 2))
    sources = _sources(tr)
    together = tr.translate_ids(sources, beam=3)
    alone = [tr.translate_ids([s], beam=3)[0] for s in sources]
    assert [h[0].tokens for h in together] == [h[0].tokens for h in alone]


def _translator(run) -> Translator:
    return Translator.from_checkpoint(run / "best.safetensors")


def _sources(tr: Translator) -> list[list[int]]:
    lines = ["i like tea .", "he is a student .", "she went to the station yesterday .", "where is my book ?"]
    return [tr.source_ids(line)[0] for line in lines]


def test_a_shortlist_of_the_whole_vocabulary_decodes_as_the_whole_vocabulary(tiny_run):
    tr = _translator(tiny_run)
    src, src_len = pad_sources(_sources(tr))
    limit = max_lengths(src_len, 1.5, 10, tr.model.max_output_positions() - 1)
    every = torch.arange(len(tr.tgt_vocab))
    with shortlist.restricted(tr.model, (every, torch.zeros(len(src), len(every)))) as model:
        g = shortlist.widen([[h] for h in greedy(model, src, src_len, limit)], every)
        b = shortlist.widen(beam_search(model, src, src_len, limit, 3, 0.6, nbest=2), every)
    assert [h[0].tokens for h in g] == [h.tokens for h in greedy(tr.model, src, src_len, limit)]
    assert [[h.tokens for h in hs] for hs in b] == [[h.tokens for h in hs] for hs in
                                                    beam_search(tr.model, src, src_len, limit, 3, 0.6, nbest=2)]
    assert tr.model.restricted is None  # the restriction ends with the block


@pytest.mark.parametrize("ensemble", [False, True])
def test_a_translation_holds_only_shortlisted_words(tiny_run, ensemble):
    tr = _translator(tiny_run)
    model = Ensemble([tr.model, _translator(tiny_run).model]) if ensemble else tr.model
    src, src_len = pad_sources(_sources(tr))
    limit = max_lengths(src_len, 1.5, 10, tr.model.max_output_positions() - 1)
    ids, blocked = shortlist.load(tiny_run / shortlist.FILE, tr.src_vocab, tr.tgt_vocab).ids(src, 5, 2)
    assert len(ids) < len(tr.tgt_vocab)
    with shortlist.restricted(model, (ids, blocked)) as restricted:
        logp, _ = restricted.decode_step(torch.full((len(src),), 2), restricted.encode(src, src_len))
        assert logp.shape == (len(src), len(ids))
        assert torch.allclose(logp.exp().sum(-1), torch.ones(len(src)), atol=1e-4)  # normalised over the shortlist
        hyps = shortlist.widen(beam_search(restricted, src, src_len, limit, 3, 0.6), ids)
    for h, row in zip(hyps, blocked):
        assert set(h[0].tokens) <= {int(i) for i, b in zip(ids, row) if b == 0}  # its sentence's own shortlist


def test_translate_with_a_shortlist_and_without(tiny_run, monkeypatch, capsys):
    assert (tiny_run / shortlist.FILE).is_file()  # written when the run started
    lines = ["i like tea .", "he is a student ."]
    whole = cli_translate(lines, monkeypatch, capsys, "--run", str(tiny_run))
    wide = cli_translate(lines, monkeypatch, capsys, "--run", str(tiny_run), "--shortlist", "100000,50")
    assert wide == whole  # every word shortlisted: the same translations
    short = cli_translate(lines, monkeypatch, capsys, "--run", str(tiny_run), "--shortlist", "10,2", "--tokenized",
                          "--keep-unk")
    tr = _translator(tiny_run)
    table = shortlist.load(tiny_run / shortlist.FILE, tr.src_vocab, tr.tgt_vocab)
    for line, out in zip(lines, short):
        ids, _ = table.ids(torch.tensor([tr.source_ids(line)[0]]), 10, 2)
        allowed = {tr.tgt_vocab.itos[i] for i in ids.tolist()}
        assert out and set(out.split()) <= allowed


def test_mt_shortlist_builds_the_file_a_run_writes(tmp_path, monkeypatch, capsys):
    run = train_tiny("transformer", "sl", epochs=1)
    written = (run / shortlist.FILE).read_bytes()
    (run / shortlist.FILE).unlink()
    monkeypatch.setattr("sys.stdin", None)
    assert main(["translate", "--run", str(run), "--shortlist", "10,2"]) != 0
    one_line_error(capsys.readouterr().err, "shortlist.safetensors", "mt shortlist")
    assert main(["shortlist", str(run)]) == 0
    assert (run / shortlist.FILE).read_bytes() == written  # the same table, deterministically


def test_a_shortlist_of_other_vocabularies_is_refused(tiny_run, tmp_path):
    tr = _translator(tiny_run)
    other = tmp_path / shortlist.FILE
    table = shortlist.Shortlist(torch.arange(4), torch.full((2, 3), -1))
    shortlist.save(table, other, tr.tgt_vocab, tr.src_vocab)  # the vocabularies swapped
    with pytest.raises(MTError, match="other vocabularies"):
        shortlist.load(other, tr.src_vocab, tr.tgt_vocab)


def test_bad_shortlist_settings_are_one_error(tiny_run, capsys):
    for bad in ("-1,3", "5", "a,b"):
        with pytest.raises(SystemExit) as e:
            main(["translate", "--run", str(tiny_run), "--shortlist", bad])
        assert e.value.code == 2 and "--shortlist" in capsys.readouterr().err
    for bad in ([-1, 3], [5]):
        with pytest.raises(MTError, match="decode.shortlist"):
            config.build({"model": {"type": "transformer"}, "decode": {"shortlist": bad}})


def test_an_int8_checkpoint_decodes_over_its_runs_shortlist(tiny_run, tmp_path, monkeypatch, capsys):
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    int8 = run / "int8.safetensors"  # beside the run's shortlist
    assert main(["quantize", str(run), "--out", str(int8)]) == 0
    lines = ["i like tea .", "he is a student ."]
    out = cli_translate(lines, monkeypatch, capsys, "--checkpoint", str(int8), "--shortlist", "10,2")
    assert len(out) == len(lines) and all(out)


def test_a_run_whose_config_sets_a_shortlist_trains_and_decodes_dev_over_the_whole_vocabulary(capsys):
    run = train_tiny("transformer", "sl-config", epochs=1, extra=["decode.shortlist=[5,2]"])
    assert "dev BLEU" in capsys.readouterr().out
    assert Translator.from_checkpoint(run / "best.safetensors").decode.shortlist == (5, 2)


def test_mt_shortlist_measures_the_sentences_a_shortlist_decodes_exactly(tiny_run, capsys):
    assert main(["shortlist", str(tiny_run), "--measure", "100000,50", "--measure", "0,1"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    every, least = (float(r.split()[1].rstrip("%")) for r in rows)
    assert every == 100.0 and 0 <= least < 100  # every word: all exact; specials and one candidate: not
