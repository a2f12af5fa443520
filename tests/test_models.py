"""Model contract tests, run identically against both families (and each RNN attention)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from mt.ensemble import Ensemble
from mt.model import build_model, count_parameters, reorder_state
from mt.search import beam_search, greedy, max_lengths
from mt.vocab import BOS, EOS, PAD
from tests.helpers import CONFIGS, V_SRC, V_TGT, batch

ENSEMBLE = "ensemble-transformer+rnn"  # an ensemble is a model like any other: the same contract tests


@pytest.fixture(params=[*CONFIGS, ENSEMBLE])
def model(request):
    torch.manual_seed(0)
    if request.param == ENSEMBLE:
        members = [build_model(*CONFIGS[name], V_SRC, V_TGT).eval() for name in ("transformer-pre", "rnn-luong")]
        return Ensemble(members, [0.6, 0.4]).eval()
    kind, cfg = CONFIGS[request.param]
    return build_model(kind, cfg, V_SRC, V_TGT).eval()


def test_shapes(model):
    src, src_len, tgt_in = batch()
    assert model(src, src_len, tgt_in).shape == (3, 6, V_TGT)
    state = model.encode(src, src_len)
    logp, _ = model.decode_step(tgt_in[:, 0], state)
    assert logp.shape == (3, V_TGT)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3), atol=1e-5)


def test_no_future_leakage(model):
    """Changing target token t+1 leaves outputs at positions ≤ t unchanged."""
    src, src_len, tgt_in = batch()
    out = model(src, src_len, tgt_in)
    changed = tgt_in.clone()
    changed[:, 4] = (changed[:, 4] + 1) % V_TGT
    out2 = model(src, src_len, changed)
    assert torch.allclose(out[:, :4], out2[:, :4], atol=1e-5)
    assert not torch.allclose(out[:, 4:], out2[:, 4:], atol=1e-5)


def test_padding_does_not_change_outputs(model):
    """Extra source padding (and a longer batch-mate) does not change a sentence's outputs."""
    src, src_len, tgt_in = batch()
    padded = F.pad(src, (0, 5), value=PAD)
    assert torch.allclose(model(src, src_len, tgt_in), model(padded, src_len, tgt_in), atol=1e-5)
    alone = model(src[2:, : int(src_len[2])], src_len[2:], tgt_in[2:])
    assert torch.allclose(alone, model(src, src_len, tgt_in)[2:], atol=1e-5)


def test_forward_equals_iterated_decode_step(model):
    """Teacher-forced log-probs equal step-by-step (cached) decoding of the same prefix."""
    src, src_len, tgt_in = batch()
    full = model(src, src_len, tgt_in).log_softmax(-1)
    state = model.encode(src, src_len)
    for t in range(tgt_in.size(1)):
        logp, state = model.decode_step(tgt_in[:, t], state)
        assert torch.allclose(logp, full[:, t], atol=1e-4), f"position {t}"


def test_reorder_state_selects_rows(model):
    src, src_len, tgt_in = batch()
    state = model.encode(src, src_len)
    a, _ = model.decode_step(tgt_in[:, 0], state)
    b, _ = model.decode_step(tgt_in[[2, 0], 0], reorder_state(state, torch.tensor([2, 0])))
    assert torch.allclose(a[[2, 0]], b, atol=1e-5)


def test_beam_one_equals_greedy(model):
    """Without a length penalty, beam 1 is greedy (with one, `mt` routes beam 1 to greedy)."""
    src, src_len, _ = batch()
    limit = max_lengths(src_len, 1.5, 5, 100)
    g = greedy(model, src, src_len, limit)
    b = beam_search(model, src, src_len, limit, beam=1, alpha=0.0)
    assert [h.tokens for h in g] == [h[0].tokens for h in b]


def test_translation_independent_of_batch(model):
    """A sentence decodes the same alone, in a batch, and at another batch position."""
    src, src_len, _ = batch()
    limit = max_lengths(src_len, 1.5, 5, 100)
    together = beam_search(model, src, src_len, limit, beam=3, alpha=0.6)
    for i in range(3):
        alone = beam_search(model, src[i: i + 1, : int(src_len[i])], src_len[i: i + 1], limit[i: i + 1],
                            beam=3, alpha=0.6)
        assert alone[0][0].tokens == together[i][0].tokens
    flipped = beam_search(model, src.flip(0), src_len.flip(0), limit.flip(0), beam=3, alpha=0.6)
    assert [h[0].tokens for h in flipped] == [h[0].tokens for h in together][::-1]


def test_nbest_sorted_and_bounded(model):
    src, src_len, _ = batch()
    limit = max_lengths(src_len, 1.5, 5, 100)
    out = beam_search(model, src, src_len, limit, beam=4, alpha=0.6, nbest=3)
    for hyps in out:
        assert 1 <= len(hyps) <= 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert all(len(h.tokens) < int(limit.max()) for h in hyps)


@pytest.mark.parametrize("name", ["transformer-pre", "rnn-luong"])
def test_parameter_count_counts_a_tied_output_once_and_an_ensemble_as_its_members(name):
    kind, cfg = CONFIGS[name]
    tied, untied = (build_model(kind, replace(cfg, tie_output=t), V_SRC, V_TGT) for t in (True, False))
    width = cfg.d_model if kind == "transformer" else cfg.emb_size
    assert count_parameters(untied) - count_parameters(tied) == V_TGT * width  # the output matrix, once
    assert count_parameters(untied) == sum(t.numel() for t in untied.state_dict().values())  # nothing shared
    assert count_parameters(Ensemble([tied, untied], [0.5, 0.5])) == count_parameters(tied) + count_parameters(untied)


@pytest.mark.slow  # hundreds of optimiser steps per family
def test_overfit_handful_of_pairs():
    """Both families learn to reproduce a few pairs exactly with greedy decoding."""
    pairs = [([5, 6, 7], [8, 9]), ([7, 6], [10, 11, 12]), ([9, 9, 5, 6], [13]), ([8], [14, 8, 9])]
    for kind, cfg in (CONFIGS["transformer-pre"], CONFIGS["rnn-luong"]):
        torch.manual_seed(0)
        model = build_model(kind, cfg, V_SRC, V_TGT)
        from mt.data import pad_sources

        src, src_len = pad_sources([s for s, _ in pairs])
        T = max(len(t) for _, t in pairs) + 1
        tgt_in = torch.full((4, T), PAD)
        tgt_out = torch.full((4, T), PAD)
        for i, (_, t) in enumerate(pairs):
            tgt_in[i, : len(t) + 1] = torch.tensor([BOS, *t])
            tgt_out[i, : len(t) + 1] = torch.tensor([*t, EOS])
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            loss = F.cross_entropy(model(src, src_len, tgt_in).view(-1, V_TGT), tgt_out.view(-1), ignore_index=PAD)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        hyps = greedy(model, src, src_len, max_lengths(src_len, 2, 3, 100))
        assert [h.tokens for h in hyps] == [t for _, t in pairs], kind


class _ScriptedModel(torch.nn.Module):
    """A fake model whose next-token distribution depends only on the prefix length and last token.

    Step 0: EOS has p=0.5, token 4 p=0.4. After 4: token 5 (p≈1), then EOS (p≈1).
    Short "EOS" scores log 0.5 = -0.69; long "4 5 EOS" scores log 0.4 ≈ -0.92 raw but wins
    under a strong length penalty — a search that stops when the top beam first ends loses it.
    """

    def encode(self, src, src_len):
        from dataclasses import dataclass

        @dataclass
        class S:
            last: torch.Tensor
            step: int = 0

        return S(torch.zeros(src.size(0), dtype=torch.long))

    def decode_step(self, prev, state):
        import dataclasses

        V = 8
        logp = torch.full((prev.size(0), V), -20.0)
        if state.step == 0:
            logp[:, EOS], logp[:, 4], logp[:, 6] = torch.tensor(0.5).log(), torch.tensor(0.4).log(), torch.tensor(0.1).log()
        else:
            logp[prev == 4, 5] = 0.0
            logp[prev != 4, EOS] = 0.0
        return logp, dataclasses.replace(state, last=prev, step=state.step + 1)


def test_beam_keeps_longer_hypothesis_under_length_penalty():
    src, src_len = torch.tensor([[4, EOS]]), torch.tensor([2])
    limit = torch.tensor([10])
    best = beam_search(_ScriptedModel(), src, src_len, limit, beam=2, alpha=2.0, penalty="length")[0][0]
    assert best.tokens == [4, 5]
    plain = beam_search(_ScriptedModel(), src, src_len, limit, beam=2, alpha=0.0)[0][0]
    assert plain.tokens == []


def test_patience_ends_a_sentence_once_enough_hypotheses_finished():
    """patience 1 (fairseq's, CTranslate2's rule) stops after 2 finished hypotheses, before the long one that the
    exact rule finds; patience 2 waits for 4 and finds it too."""
    src, src_len, limit = torch.tensor([[4, EOS]]), torch.tensor([2]), torch.tensor([10])
    search = lambda p: beam_search(_ScriptedModel(), src, src_len, limit, beam=2, alpha=2.0,  # noqa: E731
                                   penalty="length", patience=p)[0][0].tokens
    assert search(0.0) == [4, 5]
    assert search(1.0) == [6]  # "EOS" and "6 EOS" finished first; "4 5 EOS" never got its step
    assert search(2.0) == [4, 5]


def test_patience_decodes_no_more_than_exact_and_returns_finished_hypotheses(model):
    src, src_len, _ = batch()
    limit = max_lengths(src_len, 1.5, 5, 100)
    from mt.tools.bench_translate import _counted_steps  # what `mt bench translate` reports as hypothesis-steps

    out, rows = {}, {}
    for p in (0.0, 0.5, 1.0):
        with _counted_steps(model) as counted:
            out[p] = beam_search(model, src, src_len, limit, beam=4, alpha=1.0, nbest=2, patience=p)
        rows[p] = counted[0]
    assert 0 < rows[0.5] <= rows[1.0] <= rows[0.0]
    for hyps in out.values():
        assert all(1 <= len(h) <= 2 and all(len(x.tokens) < int(limit.max()) for x in h) for h in hyps)


def test_per_sentence_fields_follow_their_hypotheses():
    from dataclasses import dataclass

    from mt.state import expand_state, per_sentence

    @dataclass
    class State:
        memory: torch.Tensor = per_sentence()  # (A, ...) one row per sentence
        hyp: list[torch.Tensor] = None  # (A·group, ...)
        group: int = 1

    s = expand_state(State(torch.tensor([10, 20, 30]), [torch.tensor([1, 2, 3])]), 2)
    assert s.group == 2 and s.memory.tolist() == [10, 20, 30] and s.hyp[0].tolist() == [1, 1, 2, 2, 3, 3]
    # beam search drops sentence 1 and reorders the beams of the others (blocks of 2 stay together)
    s = reorder_state(s, torch.tensor([1, 0, 5, 5]))
    assert s.memory.tolist() == [10, 30] and s.hyp[0].tolist() == [1, 1, 3, 3]


def test_beam_search_runs_its_first_step_once_per_sentence(model):
    """The K beams of a sentence start identical: the first decoder step sees one row per sentence, later ones K."""
    rows = []
    step = model.decode_step

    def counting(prev, state):
        rows.append(prev.size(0))
        return step(prev, state)

    src, src_len = torch.tensor([[5, 6, EOS], [7, EOS, PAD]]), torch.tensor([3, 2])
    model.eval()
    model.decode_step = counting
    try:
        hyps = beam_search(model, src, src_len, torch.tensor([4, 4]), beam=3, nbest=3)
    finally:
        del model.decode_step
    assert rows[0] == 2 and all(r % 3 == 0 for r in rows[1:]) and len(rows) > 1
    assert all(len(h) == 3 for h in hyps)


def test_dropout_drops_its_rate_rescales_and_is_the_identity_in_eval():
    from mt.transformer import Dropout

    torch.manual_seed(0)
    x = torch.ones(257, 1023)
    drop = Dropout(0.1).train()
    y = drop(x)
    kept = y != 0
    assert abs(1 - float(kept.float().mean()) - drop.threshold / 256) < 0.003
    assert torch.allclose(y[kept], torch.full_like(y[kept], drop.scale))
    assert abs(float(y.mean()) - 1) < 0.01  # inverted dropout keeps the expectation
    assert not torch.equal(drop(x), y)  # a fresh mask each call
    assert torch.equal(drop.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
