"""decode.coverage (mt/coverage.py): the beam's n-best reranked against source words left unattended."""

from __future__ import annotations

import pytest
import torch

from mt import config, coverage
from mt.cli import main
from mt.errors import MTError
from mt.experiments import best_checkpoint
from mt.search import Hypothesis
from mt.translate import Translator


def test_the_penalty_is_zero_when_every_source_word_is_covered_and_falls_with_each_one_ignored():
    full = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])  # (T, S): every column sums to 1
    assert coverage.coverage_penalty(full, 1.0) == 0.0
    one_left = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    two_left = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    p1, p2 = coverage.coverage_penalty(one_left, 1.0), coverage.coverage_penalty(two_left, 1.0)
    assert 0 > p1 > p2
    assert coverage.coverage_penalty(two_left, 2.0) == pytest.approx(2 * p2)
    assert coverage.coverage_penalty(two_left, 0.0) == 0.0


def _fake_alignments(covering: set[tuple[int, ...]]):
    """Attention spread over the whole source for hypotheses in `covering`, on its first word alone otherwise."""
    def align(model, sources, outputs, device):
        out = []
        for s, o in zip(sources, outputs):
            w = torch.zeros(len(o), len(s))
            if tuple(o) in covering:
                w[:, :] = 1.0 / len(s)  # every column sums to len(o) / len(s) ≥ 1
            else:
                w[:, 0] = 1.0
            out.append(w)
        return out
    return align


def test_rerank_puts_the_covering_hypothesis_first_only_when_beta_is_large_enough(monkeypatch):
    short, full = Hypothesis([4, 5, 6], -0.5, -1.5), Hypothesis([4, 5, 6, 7, 8], -0.8, -4.0)
    monkeypatch.setattr(coverage, "alignments", _fake_alignments({(4, 5, 6, 7, 8)}))
    monkeypatch.setattr(coverage, "cross_attention", lambda model: object())
    model = torch.nn.Linear(1, 1)
    src = [[10, 11, 12]]
    assert coverage.rerank(model, src, [[short, full]], 0.0, torch.device("cpu")) == [[short, full]]
    small = coverage.rerank(model, src, [[short, full]], 0.01, torch.device("cpu"))[0]
    assert [h.tokens for h in small] == [short.tokens, full.tokens]
    large = coverage.rerank(model, src, [[short, full]], 1.0, torch.device("cpu"))[0]
    assert [h.tokens for h in large] == [full.tokens, short.tokens]
    assert large[0].score == full.score and large[1].score < short.score  # only the ignored words cost
    assert large[0].log_prob == full.log_prob


def test_rerank_leaves_empty_sources_and_hypotheses_alone(monkeypatch):
    monkeypatch.setattr(coverage, "cross_attention", lambda model: object())
    monkeypatch.setattr(coverage, "alignments", lambda *a: pytest.fail("nothing to align"))
    empty = [[Hypothesis([], -1.0, -1.0)], [Hypothesis([4], -2.0, -2.0)]]
    assert coverage.rerank(torch.nn.Linear(1, 1), [[3], []], empty, 1.0, torch.device("cpu")) == empty


def test_the_translator_returns_nbest_lists_sorted_by_the_reranked_score(tiny_run):
    translator = Translator.from_checkpoint(best_checkpoint(tiny_run), beam=4, coverage=0.5)
    assert translator.decode.coverage == 0.5
    lists = translator.translate_ids([translator.source_ids("I am a student.")[0],
                                      translator.source_ids("He didn't come.")[0]], nbest=3)
    for hyps in lists:
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_a_negative_beta_is_one_clear_error(capsys):
    with pytest.raises(MTError, match="decode.coverage"):
        config.DecodeConfig(coverage=-0.1)
    with pytest.raises(SystemExit) as exit_:
        main(["translate", "--coverage", "-1"])
    assert exit_.value.code == 2 and "--coverage" in capsys.readouterr().err
