"""CTranslate2 export: parity with our model (pre- and post-norm), int8, errors, CLI end to end."""

from __future__ import annotations

import io
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest
import torch

pytest.importorskip("ctranslate2")

from mt import corpora  # noqa: E402
from mt.cli import main  # noqa: E402
from mt.data import pad_sources  # noqa: E402
from mt.errors import MTError  # noqa: E402
from mt.tools.export_ct2 import CT2Translator, bench_ct2, build_spec, export_ctranslate2  # noqa: E402
from mt.translate import Translator, translate_lines  # noqa: E402
from mt.vocab import BOS, EOS  # noqa: E402
from tests.helpers import runs_in, shared_runs, train_tiny  # noqa: E402

_RUNS: dict[str, Path] = {}
_EXPORTS: dict[str, Path] = {}


def tiny_run(norm: str) -> Path:
    """A tiny Transformer trained once per session for each norm placement."""
    if norm not in _RUNS:
        with runs_in(shared_runs("ct2")):
            _RUNS[norm] = train_tiny("transformer", f"ct2-tiny-{norm}", epochs=6, extra=[f'model.norm="{norm}"'])
    return _RUNS[norm]


def exported(norm: str, tmp_path_factory) -> Path:
    """The float32 export of tiny_run(norm), made once."""
    if norm not in _EXPORTS:
        out = tmp_path_factory.mktemp("ct2") / f"ct2-{norm}"
        _EXPORTS[norm] = export_ctranslate2(tiny_run(norm) / "best.safetensors", out)
    return _EXPORTS[norm]


def sample_lines(split: str) -> tuple[list[str], list[str]]:
    folder, _ = corpora.resolve("sample")
    read = lambda p: p.read_text(encoding="utf-8").splitlines()  # noqa: E731
    return read(folder / f"{split}.en"), read(folder / f"{split}.ja")


def both(norm: str, tmp_path_factory) -> tuple[Translator, CT2Translator]:
    ours = Translator.from_checkpoint(tiny_run(norm) / "best.safetensors")
    theirs = CT2Translator(exported(norm, tmp_path_factory), compute_type="float32", intra_threads=1)
    return ours, theirs


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_scores_match_teacher_forced_log_probs(norm, tmp_path_factory):
    ours, theirs = both(norm, tmp_path_factory)
    src_lines, ref_lines = sample_lines("dev")
    srcs = [ours.source_ids(s)[0] for s in src_lines]
    tgts = [ours.tgt_vocab.encode(ours.tgt_pipe.tokenize(r)) for r in ref_lines]
    scored = theirs.translator.score_batch([theirs.source_tokens(s) for s in srcs],
                                           [[ours.tgt_vocab.itos[i] for i in t] for t in tgts])
    worst = 0.0
    with torch.no_grad():
        for s, t, r in zip(srcs, tgts, scored, strict=True):
            src, src_len = pad_sources([s])
            logp = ours.model(src, src_len, torch.tensor([[BOS, *t]])).float().log_softmax(-1)[0]
            expected = logp.gather(1, torch.tensor([*t, EOS])[:, None])[:, 0]  # target + </s>
            assert r.tokens == [ours.tgt_vocab.itos[i] for i in [*t, EOS]]
            worst = max(worst, (expected - torch.tensor(r.log_probs)).abs().max().item())
    assert worst < 1e-4


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_greedy_identical_to_ours(norm, tmp_path_factory):
    ours, theirs = both(norm, tmp_path_factory)
    lines = sample_lines("dev")[0] + sample_lines("test")[0] + ["", "I like fish!"]
    a, b = ours.translate(lines, beam=1), theirs.translate(lines, beam=1)
    assert theirs.translate(["\x01"], beam=1)[0][0].text == ""  # no tokens: CT2 skips, ours decodes [EOS]
    assert [x[0].tokens for x in a] == [y[0].tokens for y in b]
    assert [x[0].text for x in a] == [y[0].text for y in b]
    assert max(abs(x[0].score - y[0].score) for x, y in zip(a, b, strict=True)) < 1e-4


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_beam_agrees_and_scores_use_our_length_penalty(norm, tmp_path_factory):
    ours, theirs = both(norm, tmp_path_factory)
    lines = sample_lines("dev")[0] + sample_lines("test")[0]
    for penalty in ("wu", "length"):
        ours.decode = theirs.decode = replace(ours.decode, length_penalty=penalty)
        a, b = ours.translate(lines, beam=4, nbest=2), theirs.translate(lines, beam=4, nbest=2)
        same = [(x, y) for x, y in zip(a, b, strict=True) if x[0].tokens == y[0].tokens]
        assert len(same) >= 0.9 * len(lines)  # beam bookkeeping differs; the score formula does not
        assert max(abs(x[0].score - y[0].score) for x, y in same) < 1e-4


def test_length_limits_match(tmp_path_factory):
    ours, theirs = both("pre", tmp_path_factory)
    lines = sample_lines("dev")[0]
    for b_, most in ((3, 2), (1, 0)):  # limit counts the (forced) EOS
        ours.decode = theirs.decode = replace(ours.decode, max_len_a=0.0, max_len_b=b_)
        for beam in (1, 3):
            a, b = ours.translate(lines, beam=beam), theirs.translate(lines, beam=beam)
            assert [x[0].tokens for x in a] == [y[0].tokens for y in b]
            assert all(len(y[0].tokens.split()) <= most for y in b)
            assert max(abs(x[0].score - y[0].score) for x, y in zip(a, b, strict=True)) < 1e-4


def test_long_input_is_truncated_like_ours(tmp_path_factory):
    ours, theirs = both("pre", tmp_path_factory)
    line = " ".join(["tom likes fish and"] * 80) + " books ."  # > max_src_len tokens
    assert theirs.source_ids(line)[1] and ours.source_ids(line)[1]
    assert ours.translate([line], beam=1)[0][0].tokens == theirs.translate([line], beam=1)[0][0].tokens


def test_lines_are_split_into_sentences_like_ours(tmp_path_factory):
    ours, theirs = both("pre", tmp_path_factory)
    lines = ["I am a student. Where is the station? Thank you!", " ".join(["tom likes fish and"] * 80) + " books ."]
    a, b = translate_lines(ours, lines, beam=1), translate_lines(theirs, lines, beam=1)
    assert [x.outputs[0].tokens for x in a] == [y.outputs[0].tokens for y in b]
    assert a[1].notes == b[1].notes and "pieces split at" in b[1].notes[0]  # the same pieces, never truncated


def test_tied_projection_and_our_position_table(tmp_path_factory):
    ours, _ = both("pre", tmp_path_factory)
    spec = build_spec(ours.model, ours.src_vocab.itos, ours.tgt_vocab.itos)
    assert spec.decoder.projection.weight is spec.decoder.embeddings.weight
    assert torch.equal(torch.from_numpy(spec.encoder.position_encodings.encodings), ours.model.pos.pe)
    assert spec.config.eos_token == "</s>" and spec.config.add_source_eos


def test_int8_export_loads_and_translates(tmp_path, tmp_path_factory):
    out = export_ctranslate2(tiny_run("pre") / "best.safetensors", tmp_path / "int8", "int8")
    assert (out / "model.bin").stat().st_size < (exported("pre", tmp_path_factory) / "model.bin").stat().st_size
    tr = CT2Translator(out, intra_threads=1)
    assert tr.translator.compute_type.startswith("int8")
    outs = tr.translate(sample_lines("dev")[0], beam=3)
    assert all(o[0].text for o in outs)


def test_seq2seq_export_is_a_clear_error(tmp_path):
    run = train_tiny("seq2seq", "ct2-tiny-rnn", epochs=1)
    with pytest.raises(MTError, match="only Transformer") as e:
        export_ctranslate2(run / "best.safetensors", tmp_path / "x")
    assert "\n" not in str(e.value) and not (tmp_path / "x").exists()


def test_missing_ctranslate2_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    with pytest.raises(MTError, match="pip install ctranslate2"):
        export_ctranslate2(tiny_run("pre") / "best.safetensors", tmp_path / "x")


def test_output_folder_rules(tmp_path):
    ckpt = tiny_run("pre") / "best.safetensors"
    out = export_ctranslate2(ckpt, tmp_path / "m")
    export_ctranslate2(ckpt, out, "int8")  # replacing an earlier export is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp folders left
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(MTError, match="not an mt CTranslate2 export"):
        export_ctranslate2(ckpt, tmp_path / "other")
    with pytest.raises(MTError, match="not an mt CTranslate2 export"):
        CT2Translator(tmp_path / "other")


@pytest.mark.slow  # a CTranslate2 benchmark
def test_bench_reports_rates(tmp_path_factory):
    rates = bench_ct2(exported("pre", tmp_path_factory), sample_lines("dev")[0], beam=2, repeats=1)
    assert set(rates) == {"sentences_per_s", "tokens_per_s"} and all(v > 0 for v in rates.values())


def _stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(text.encode())))


def test_cli_export_and_translate(tmp_path, monkeypatch, capsys):
    run = tiny_run("post")
    out = tmp_path / "cli-ct2"
    assert main(["export", str(run), "--format", "ctranslate2", "--out", str(out)]) == 0
    assert (out / "model.bin").exists() and str(out) in capsys.readouterr().out
    text = "\n".join(sample_lines("dev")[0][:5]) + "\n\nI like fish.\n"
    _stdin(monkeypatch, text)
    assert main(["translate", "--engine", "ctranslate2", "--ct2-dir", str(out), "--beam", "1"]) == 0
    ct2_out = capsys.readouterr().out
    _stdin(monkeypatch, text)
    assert main(["translate", "--run", str(run), "--beam", "1"]) == 0
    assert ct2_out == capsys.readouterr().out and len(ct2_out.splitlines()) == 7
    _stdin(monkeypatch, "I like fish.\n")
    assert main(["translate", "--engine", "ctranslate2"]) == 2
    assert "--ct2-dir" in capsys.readouterr().err
    _stdin(monkeypatch, "I like fish.\n")
    assert main(["translate", "--engine", "ctranslate2", "--ct2-dir", str(out), "--coverage", "0.5",
                 "--names", "source", "--precision", "bf16", "--patience", "1", "--shortlist", "5,2"]) == 2
    err = capsys.readouterr().err
    assert "--coverage, --names, --precision, --patience, --shortlist" in err and "PyTorch engine" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["export", "ct2-tiny-rnn-missing", "--out", str(tmp_path / "y")]) == 2
