"""Attention maps for both families: shapes, normalisation, the causal triangle, errors, CLI, PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mt.cli import main
from mt.errors import MTError
from mt.experiments import best_checkpoint
from mt.model import build_model
from mt.rnn import RNNConfig
from mt.tools import attention_plot
from mt.tools.attention_plot import attention_matrix, draw_attention, plot_attention
from mt.translate import Translator

SENTENCE = "My mother wants books."
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def translator(tiny_run) -> Translator:
    return Translator.from_checkpoint(best_checkpoint(tiny_run))


def _is_transformer(translator: Translator) -> bool:
    return hasattr(translator.model, "decoder_layers")


def _rows_sum_to_one(matrix: torch.Tensor) -> None:
    assert torch.allclose(matrix.sum(-1), torch.ones(matrix.size(0)), atol=1e-5)


def test_cross_attention_map(translator, tiny_run, tmp_path):
    out, matrix = draw_attention(translator, best_checkpoint(tiny_run), SENTENCE, tmp_path / "a.png")
    assert out.read_bytes().startswith(PNG)
    src_tokens, out_tokens, again = attention_matrix(translator, SENTENCE)
    assert torch.equal(matrix, again)
    assert src_tokens == translator.src_pipe.tokenize(SENTENCE) + ["</s>"]
    assert out_tokens[-1] == "</s>"
    assert matrix.shape == (len(out_tokens), len(src_tokens))
    _rows_sum_to_one(matrix)
    assert (matrix >= 0).all()


def test_output_is_the_translation(translator):
    """The rows are the decoded translation: same tokens as `translate_ids` with the same beam."""
    _, out_tokens, _ = attention_matrix(translator, SENTENCE, beam=1)
    hyp = translator.translate_ids([translator.source_ids(SENTENCE)[0]], beam=1)[0][0]
    assert out_tokens == [translator.tgt_vocab.itos[i] for i in hyp.tokens] + ["</s>"]


def test_heads_and_self_attention(translator, tmp_path):
    if not _is_transformer(translator):
        with pytest.raises(MTError, match="no self-attention"):
            attention_matrix(translator, SENTENCE, kind="self")
        with pytest.raises(MTError, match="single attention"):
            attention_matrix(translator, SENTENCE, layer=2)
        return
    n_heads = translator.model.cfg.n_heads
    heads = torch.stack([attention_matrix(translator, SENTENCE, layer=1, head=h)[2]
                         for h in range(1, n_heads + 1)])
    _rows_sum_to_one(heads[0])
    mean = attention_matrix(translator, SENTENCE, layer=1, head="mean")[2]
    assert torch.allclose(heads.mean(0), mean, atol=1e-6)
    inputs, out_tokens, matrix = attention_matrix(translator, SENTENCE, kind="self", head=1)
    assert inputs == ["<s>", *out_tokens[:-1]]
    assert matrix.shape == (len(out_tokens), len(out_tokens))
    _rows_sum_to_one(matrix)
    assert torch.equal(matrix.triu(1), torch.zeros_like(matrix))  # nothing from the future
    for bad in ({"layer": 0}, {"layer": 9}, {"head": 0}, {"head": n_heads + 1}):
        with pytest.raises(MTError, match="must be"):
            attention_matrix(translator, SENTENCE, **bad)


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_other_rnn_attentions(translator, attention):
    """Bahdanau records step by step; attention = "none" has nothing to show and says so."""
    if _is_transformer(translator):
        pytest.skip("RNN attention variants")
    torch.manual_seed(0)
    cfg = RNNConfig(cell="gru", emb_size=16, hidden_size=16, n_layers=1, attention=attention, dropout=0.0)
    model = build_model("seq2seq", cfg, len(translator.src_vocab), len(translator.tgt_vocab)).eval()
    other = Translator(model, translator.src_pipe, translator.tgt_pipe, translator.src_vocab,
                       translator.tgt_vocab, translator.decode)
    if attention == "none":
        with pytest.raises(MTError, match="this model has no attention"):
            attention_matrix(other, SENTENCE)
        return
    src_tokens, out_tokens, matrix = attention_matrix(other, SENTENCE, beam=1)
    assert matrix.shape == (len(out_tokens), len(src_tokens))
    _rows_sum_to_one(matrix)


def test_cli(tiny_run, tmp_path, capsys):
    out = tmp_path / "cli.png"
    assert main(["attention", "--run", str(tiny_run), SENTENCE, "--out", str(out), "--head", "1"]) == 0
    assert out.read_bytes().startswith(PNG)
    assert main(["attention", "--run", str(tiny_run), SENTENCE, "--out", str(out), "--layer", "9"]) == 2
    assert "mt: error:" in capsys.readouterr().err
    assert main(["attention", "--run", str(tiny_run), "", "--out", str(out)]) == 2
    assert "empty" in capsys.readouterr().err


def test_without_cjk_font(monkeypatch, tmp_path):
    """No Japanese font: the plot is still written and one warning names the fix."""
    monkeypatch.setattr(attention_plot, "cjk_font", lambda: None)
    said: list[str] = []
    out = plot_attention(["a", "</s>"], ["猫", "</s>"], torch.full((2, 2), 0.5), Path(tmp_path / "x.png"),
                         "title", said.append)
    assert out.read_bytes().startswith(PNG)
    assert len(said) == 1 and "matplotlib-fontja" in said[0]
