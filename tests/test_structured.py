"""Structured pruning (mt/tools/structured.py): smaller dense matrices, consistent removal of heads and
neurons, amount 0 = the teacher exactly, and a checkpoint that every command loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.ao.nn.quantized import dynamic as nnqd

from mt import checkpoint as ckpt
from mt.cli import main
from mt.errors import MTError
from mt.experiments import best_checkpoint
from mt.model import build_model
from mt.tools.structured import head_importance, neuron_importance, pad_heads, prune_structured, shrink
from mt.translate import Translator
from tests.helpers import CONFIGS, V_SRC, V_TGT, batch, cli_translate, runs_in, train_tiny

SENTENCES = ["I am a student.", "Where is the station?", "She likes music very much."]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    with runs_in(tmp_path_factory.mktemp("struct-runs")):
        return train_tiny("transformer", "struct-tf", epochs=8)


def _transformer(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(*CONFIGS["transformer-pre"], V_SRC, V_TGT).eval()


def _library_translate(path: Path) -> list[str]:
    return [o[0].text for o in Translator.from_checkpoint(path).translate(SENTENCES)]


def _cli_translate(path: Path, monkeypatch, capsys) -> list[str]:
    return cli_translate(SENTENCES, monkeypatch, capsys, "--checkpoint", str(path))


def test_amount_zero_is_the_teacher_exactly(run, tmp_path):
    tensors, meta = prune_structured(best_checkpoint(run), 0.0, log=lambda _m: None)
    path = tmp_path / "s0.safetensors"
    ckpt.save(path, tensors, meta)
    teacher, pruned = Translator.from_checkpoint(best_checkpoint(run)), Translator.from_checkpoint(path)
    for beam in (1, 3):
        a = [o[0] for o in teacher.translate(SENTENCES, beam=beam)]
        b = [o[0] for o in pruned.translate(SENTENCES, beam=beam)]
        assert [o.text for o in a] == [o.text for o in b] and [o.score for o in a] == [o.score for o in b]


def test_matrices_shrink_and_every_module_keeps_the_same_units():
    model = _transformer()
    small = shrink(model, heads=2, d_ff=40)  # of 4 heads, 64 neurons
    d_k = model.cfg.d_k
    for layer in small.decoder_layers:
        assert layer.self_attn.qkv.weight.shape == (3 * 2 * d_k, 32) and layer.self_attn.out.weight.shape == (32, 2 * d_k)
        assert layer.cross_attn.q.weight.shape == (2 * d_k, 32) and layer.cross_attn.kv.weight.shape == (4 * d_k, 32)
        assert layer.ff.w1.weight.shape == (40, 32) and layer.ff.w2.weight.shape == (32, 40)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


@torch.no_grad()
def test_removing_silent_heads_and_neurons_leaves_the_function_unchanged():
    """Zero two heads (Q/K/V rows and output columns) and 24 neurons (W1 rows, W2 columns) in every module:
    they contribute nothing, rank lowest, and their removal must not change a single output."""
    model = _transformer()
    d_k = model.cfg.d_k
    for module in model.modules():
        if hasattr(module, "n_heads") and hasattr(module, "out"):
            for h in (1, 3):
                for name, parts in ([("qkv", 3)] if hasattr(module, "qkv") else [("q", 1), ("kv", 2)]):
                    for p in range(parts):
                        rows = slice(p * 4 * d_k + h * d_k, p * 4 * d_k + (h + 1) * d_k)
                        getattr(module, name).weight[rows] = 0
                        getattr(module, name).bias[rows] = 0
                module.out.weight[:, h * d_k:(h + 1) * d_k] = 0
        if hasattr(module, "w1"):
            module.w1.weight[40:] = 0
            module.w1.bias[40:] = 0
            module.w2.weight[:, 40:] = 0
    layer = model.encoder_layers[0]
    assert head_importance(layer.self_attn)[[1, 3]].eq(0).all() and neuron_importance(layer.ff)[40:].eq(0).all()
    small = shrink(model, heads=2, d_ff=40)
    src, src_len, tgt_in = batch()
    assert torch.allclose(small(src, src_len, tgt_in), model(src, src_len, tgt_in), atol=1e-5)
    assert torch.allclose(pad_heads(small)(src, src_len, tgt_in), model(src, src_len, tgt_in), atol=1e-5)


def test_the_pruned_checkpoint_loads_everywhere_and_finetuning_keeps_its_shape(run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "s50.safetensors"
    assert main(["prune", str(run), "--structured", "--amount", "0.5", "--finetune-steps", "3", "--out", str(out)]) == 0
    assert "1 heads per attention module" in capsys.readouterr().out  # the tiny Transformer has 2
    model, cfg, _ = ckpt.load_model(out)
    assert cfg.model.n_heads == 1 and cfg.model.d_ff == 32 and cfg.model.head_dim == 16
    plain, meta = prune_structured(best_checkpoint(run), 0.5, log=lambda _m: None)
    tuned = ckpt.model_tensors(model.state_dict())
    assert {k: v.shape for k, v in plain.items()} == {k: tuned[k].shape for k in plain}
    assert any(not torch.equal(plain[k], tuned[k]) for k in plain)  # fine-tuning trained it
    assert _cli_translate(out, monkeypatch, capsys) == _library_translate(out)  # mt translate loads it
    assert main(["evaluate", "--checkpoint", str(out), "--split", "test"]) == 0
    int8 = tmp_path / "s50-int8.safetensors"
    assert main(["quantize", str(out), "--out", str(int8)]) == 0
    quantized, cfg, _ = ckpt.load_model(int8)
    assert cfg.model.n_heads == 1 and cfg.model.d_ff == 32  # quantized at its pruned shape
    assert nnqd.Linear in {type(m) for m in quantized.modules()}
    assert _cli_translate(int8, monkeypatch, capsys) == _library_translate(int8)
    pytest.importorskip("ctranslate2", reason="CTranslate2 is an optional extra")
    from mt.tools.export_ct2 import CT2Translator, export_ctranslate2

    folder = export_ctranslate2(out, tmp_path / "ct2")  # heads padded back with zeros: the same function
    ours = [o[0].text for o in Translator.from_checkpoint(out).translate(SENTENCES, beam=1)]
    theirs = [o[0].text for o in CT2Translator(folder).translate(SENTENCES, beam=1)]
    assert theirs == ours


def test_seq2seq_is_refused_with_a_clear_line(tmp_path):
    rnn = train_tiny("seq2seq", "struct-rnn", epochs=1)
    with pytest.raises(MTError, match="seq2seq"):
        prune_structured(best_checkpoint(rnn), 0.5, log=lambda _m: None)


@pytest.mark.slow  # decodes the training set, fine-tunes twice
def test_finetuning_on_the_teachers_translations_keeps_its_vocabularies(run, tmp_path, capsys):
    """--distill: fine-tune on the unpruned model's beam translations, encoded with its own vocabularies."""
    out = tmp_path / "s50-kd.safetensors"
    assert main(["prune", str(run), "--structured", "--amount", "0.5", "--finetune-steps", "3", "--distill",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "teacher (beam" in err and "fine-tuned 3 steps" in err
    meta = ckpt.load(out)[1]
    teacher_meta = ckpt.load(best_checkpoint(run))[1]
    assert meta["structured"]["finetune_distilled"] is True
    assert meta["src_vocab"] == teacher_meta["src_vocab"] and meta["tgt_vocab"] == teacher_meta["tgt_vocab"]
    # what it was fine-tuned on: not the corpus's references (the same steps on them give other weights)
    on_refs, _ = prune_structured(best_checkpoint(run), 0.5, 3, log=lambda _m: None)
    distilled = ckpt.load(out)[0]
    assert on_refs.keys() == distilled.keys() and any(not torch.equal(on_refs[k], distilled[k]) for k in on_refs)
    # a second pruning reuses the translations instead of decoding again
    assert main(["prune", str(run), "--amount", "0.5", "--finetune-steps", "2", "--distill",
                 "--out", str(tmp_path / "m50-kd.safetensors")]) == 0
    assert "reusing distilled corpus" in capsys.readouterr().err


def test_distill_without_finetuning_is_one_error(run, tmp_path, capsys):
    assert main(["prune", str(run), "--structured", "--amount", "0.5", "--distill"]) == 2
    assert "--finetune-steps" in capsys.readouterr().err
