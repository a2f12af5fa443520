"""`mt translate` / `mt evaluate`: line discipline, bad input, interactive use, scores."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import sacrebleu

from mt.cli import main
from mt.experiments import best_checkpoint
from mt.translate import Translator
from tests.helpers import ROOT


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def _translate(monkeypatch, capsys, data: bytes, *args: str) -> tuple[list[str], str]:
    monkeypatch.setattr(sys, "stdin", _Stdin(data))
    assert main(["translate", *args]) == 0
    cap = capsys.readouterr()
    return cap.out.split("\n")[:-1], cap.err


def test_three_lines_in_three_out(monkeypatch, capsys, tiny_run):
    out, err = _translate(monkeypatch, capsys, b"I am a student.\n\nHe didn't come.\n", "--run", str(tiny_run))
    assert len(out) == 3 and out[1] == "" and out[0] and out[2]
    assert " " not in out[0]  # natural Japanese: no word spaces
    assert "translating with" in err


def test_without_run_the_most_recently_trained_run_translates(monkeypatch, capsys, tiny_run, own_runs):
    """No --run: the run whose best checkpoint is newest, named on stderr; none trained is one error."""
    monkeypatch.setattr(sys, "stdin", _Stdin(b"I like tea.\n"))
    assert main(["translate"]) == 2
    assert "no trained run found" in capsys.readouterr().err
    older, newer = (shutil.copytree(tiny_run, own_runs / name) for name in ("older", "newer"))
    for age, run in ((2000, older), (1000, newer)):  # seconds ago
        os.utime(run / "best.safetensors", (time.time() - age,) * 2)
    out, err = _translate(monkeypatch, capsys, b"I like tea.\n")
    assert f"translating with {newer / 'best.safetensors'}" in err and len(out) == 1
    os.utime(older / "best.safetensors")  # retrained now: the most recent
    _, err = _translate(monkeypatch, capsys, b"I like tea.\n")
    assert f"translating with {older / 'best.safetensors'}" in err


def test_bad_inputs_never_shift_lines(monkeypatch, capsys, tiny_run):
    lines = [b"I like tea.", b"   ", b"\xff\xfe broken utf8", b"ctrl \x01\x02 chars \x1b[31m", "emoji 🎉 ok".encode(),
             "日本語の文です。".encode(), " ".join(["word"] * 500).encode(), b"", b"Tom likes fish."]
    out, err = _translate(monkeypatch, capsys, b"\n".join(lines) + b"\n", "--run", str(tiny_run), "--batch-size", "3")
    assert len(out) == len(lines)
    assert out[1] == "" and out[7] == ""
    assert "line 3: invalid UTF-8" in err
    assert "line 7: 501 tokens, more than the model's limit of 200: translated in 3 pieces split at word boundaries" in err
    assert "truncated" not in err
    assert "Traceback" not in err


def test_nbest_and_tokenized(monkeypatch, capsys, tiny_run):
    out, _ = _translate(monkeypatch, capsys, b"I like tea.\n", "--run", str(tiny_run), "--nbest", "2", "--beam", "3")
    assert len(out) == 1 and out[0].count(" ||| ") == 1
    sentences = ["I like tea.", "Tom likes fish.", "I am a student."]
    expected = [o[0] for o in Translator.from_checkpoint(best_checkpoint(tiny_run)).translate(sentences)]
    data = "".join(x + "\n" for x in sentences).encode()
    tokenized, _ = _translate(monkeypatch, capsys, data, "--run", str(tiny_run), "--tokenized")
    plain, _ = _translate(monkeypatch, capsys, data, "--run", str(tiny_run))
    assert tokenized == [o.tokens for o in expected] and plain == [o.text for o in expected]
    # the same words: the model's, separated by spaces, where the plain output joins them
    assert [t.replace(" ", "") for t in tokenized] == [p.replace(" ", "") for p in plain]
    assert sum(t.count(" ") for t in tokenized) > sum(p.count(" ") for p in plain)


def test_interactive_line_at_a_time(tiny_run):
    """A line written to a pipe and flushed is answered before the next one is sent."""
    proc = subprocess.Popen([sys.executable, "-m", "mt", "translate", "--run", str(tiny_run)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ})
    try:
        for sentence in (b"I like tea.\n", b"\n", b"Tom likes fish.\n"):
            proc.stdin.write(sentence)
            proc.stdin.flush()
            reply = proc.stdout.readline()  # blocks until answered: stdin is still open
            assert reply.endswith(b"\n")
            assert (reply == b"\n") == (sentence == b"\n")
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_missing_and_bad_checkpoints(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "stdin", _Stdin(b"hi\n"))
    assert main(["translate", "--run", "no-such-run"]) == 2
    assert "run not found" in capsys.readouterr().err
    bogus = tmp_path / "x.safetensors"
    bogus.write_bytes(b"not a checkpoint at all")
    assert main(["translate", "--checkpoint", str(bogus)]) == 2
    err = capsys.readouterr().err
    assert "not a checkpoint" in err and err.count("\n") == 1
    assert main(["translate", "--checkpoint", str(tmp_path / "missing.safetensors")]) == 2


def test_evaluate_matches_sacrebleu_cli(tiny_run, capsys):
    assert main(["evaluate", "--run", str(tiny_run), "--split", "test"]) == 0
    scores = json.loads((tiny_run / "eval-test.json").read_text())
    hyps = (tiny_run / "hyps-test.txt").read_text().splitlines()
    refs = Path(scores["ref"]).read_text().splitlines()
    assert len(hyps) == len(refs)
    # the sample corpus is raw: ja-mecab BLEU and chrF only, and they match sacrebleu's own CLI
    assert "bleu_tok" not in scores
    for args, key in ((["-m", "bleu", "-tok", "ja-mecab"], "bleu_ja"), (["-m", "chrf"], "chrf")):
        proc = subprocess.run([sys.executable, "-m", "sacrebleu", scores["ref"], "-i", str(tiny_run / "hyps-test.txt"),
                               *args, "-b", "-w", "4"], capture_output=True, text=True)
        assert abs(float(proc.stdout.strip()) - scores[key]) < 1e-3, (key, proc.stdout, proc.stderr)
    assert "ja-mecab" in scores["bleu_ja_signature"]


def test_evaluate_tokenized_reference(tiny_run, tmp_path, capsys):
    """A tokenized reference gets corpus-token BLEU as is and detokenized scores without spaces."""
    src = tmp_path / "s.en"
    ref = tmp_path / "r.ja"
    src.write_text("I like tea.\nTom likes fish.\n")
    ref.write_text("私 は お茶 が 好き で す 。\nトム は 魚 が 好き で す 。\n")
    assert main(["evaluate", "--run", str(tiny_run), "--src", str(src), "--ref", str(ref), "--ref-tokenized"]) == 0
    out = capsys.readouterr().out
    assert "BLEU (corpus tokens)" in out and "ja-mecab" in out and "chrF" in out
    scores = json.loads((tiny_run / "eval-s.json").read_text())
    tok_hyps = (tiny_run / "hyps-s.tok.txt").read_text().splitlines()
    expect = sacrebleu.corpus_bleu(tok_hyps, [ref.read_text().splitlines()], tokenize="none").score
    assert abs(expect - scores["bleu_tok"]) < 1e-9


def test_one_decode_and_score_for_raw_lines_and_encoded_ids(tiny_run):
    """Raw lines and their ids (the trainer's dev set) decode and score alike; tokenized references give
    corpus-token BLEU as the headline, and `every=False` skips ja BLEU there."""
    from mt.evaluate import Pairs, bleu_signature, decode_and_score
    from mt.experiments import best_checkpoint
    from mt.translate import Translator

    tr = Translator.from_checkpoint(best_checkpoint(tiny_run), keep_unk=True)  # ids are decoded without copies
    lines = ["I like tea.", "Tom likes fish.", "Where is the station?"]
    refs = ["私 は お茶 が 好き で す 。", "トム は 魚 が 好き で す 。", "駅 は どこ で す か 。"]
    from_lines = decode_and_score(tr, Pairs(lines, refs, True), beam=3)
    from_ids = decode_and_score(tr, Pairs([tr.source_ids(x)[0] for x in lines], refs, True), beam=3, every=False)
    assert from_lines.outputs == from_ids.outputs and from_lines.bleu == from_ids.bleu == from_lines.scores["bleu_tok"]
    assert "bleu_ja" in from_lines.scores and "bleu_ja" not in from_ids.scores
    assert from_lines.refs_detok[0] == "私はお茶が好きです。" and from_lines.bleu_signature == bleu_signature(True)
    raw = decode_and_score(tr, Pairs(lines, from_lines.refs_detok, False), beam=3, every=False)
    assert raw.bleu == raw.scores["bleu_ja"] == from_lines.scores["bleu_ja"] and raw.bleu_signature == bleu_signature(False)


def test_never_13a_on_japanese():
    from mt import metrics

    _, sig = metrics.ja_bleu(["私は学生です。"], ["私は学生です。"])
    assert "13a" not in sig


def _translator(run: Path):
    from mt.experiments import best_checkpoint
    from mt.translate import Translator

    return Translator.from_checkpoint(best_checkpoint(run))


def test_unknown_output_copies_the_unknown_source_word(tiny_run):
    from mt.unk import replace_unknowns
    from mt.vocab import UNK

    tr = _translator(tiny_run)
    words = tr.src_vocab.itos[4:8]  # known words of the tiny vocabulary
    tokens = [words[0], words[1], "zyxwv", words[2], words[3]]
    ids = tr.src_vocab.encode(tokens)
    assert ids[2] == UNK and ids.count(UNK) == 1
    out = [5, UNK, 6, UNK]
    (copies,) = replace_unknowns(tr.model, [(ids, tokens, out)], tr.device)
    assert copies == [None, "zyxwv", None, "zyxwv"]  # the source's only unknown word, at each output <unk>
    (copies,) = replace_unknowns(tr.model, [(tr.src_vocab.encode(words), words, [UNK])], tr.device)
    assert copies[0] in words  # no unknown source word: the most attended one
    assert replace_unknowns(tr.model, [([], [], [UNK])], tr.device) == [[None]]  # nothing to copy from


def test_translate_never_prints_unk_with_attention(tiny_run, monkeypatch):
    from mt import search
    from mt.vocab import UNK

    tr = _translator(tiny_run)
    real = search.greedy

    def unk_first(model, src, src_len, max_len):  # a model that would start every output with <unk>
        return [search.Hypothesis([UNK, *h.tokens], h.score, h.log_prob) for h in real(model, src, src_len, max_len)]

    monkeypatch.setattr("mt.translate.greedy", unk_first)
    outs = tr.translate(["i like qwertyuiop .", "where is the station ?"], beam=1)
    assert "<unk>" not in outs[0][0].tokens and outs[0][0].tokens.split()[0] == "qwertyuiop"
    assert "<unk>" not in outs[1][0].tokens
    tr.decode = replace(tr.decode, replace_unk=False)
    assert tr.translate(["i like qwertyuiop ."], beam=1)[0][0].tokens.split()[0] == "<unk>"


def test_keep_unk_flag(monkeypatch, capsys, tiny_run):
    from mt.translate import Translator

    seen = []
    real = Translator.from_checkpoint.__func__

    def spy(cls, *args, **kwargs):
        tr = real(cls, *args, **kwargs)
        seen.append(tr.decode.replace_unk)
        return tr

    monkeypatch.setattr(Translator, "from_checkpoint", classmethod(spy))
    out, _ = _translate(monkeypatch, capsys, b"I like tea.\n", "--run", str(tiny_run), "--keep-unk")
    assert len(out) == 1 and seen == [False]
    _translate(monkeypatch, capsys, b"I like tea.\n", "--run", str(tiny_run))
    assert seen == [False, True]


def test_evaluate_checkpoint_keeps_the_runs_own_scores(tiny_run, capsys):
    from mt.experiments import best_checkpoint

    own = tiny_run / "eval-test.json"
    before = own.read_text() if own.exists() else None
    ckpt = best_checkpoint(tiny_run)
    assert main(["evaluate", "--checkpoint", str(ckpt), "--split", "test", "--beam", "1"]) == 0
    assert (tiny_run / f"eval-test.{ckpt.stem}.json").exists()
    assert (own.read_text() if own.exists() else None) == before


def test_source_tokens_use_known_american_spellings():
    from collections import Counter

    from mt.text import Pipeline
    from mt.translate import source_tokens
    from mt.vocab import Vocab

    vocab = Vocab.build(Counter({"what": 1, "color": 1, "?": 1}), min_count=1)
    assert source_tokens("What colour?", Pipeline("en"), vocab) == ["what", "color", "?"]
    assert source_tokens("What flavour?", Pipeline("en"), vocab) == ["what", "flavour", "?"]  # no known form: kept


def test_evaluate_scores_a_line_of_several_sentences_as_mt_translate_prints_it(tiny_run):
    from mt.evaluate import Pairs, decode_and_score
    from mt.text import detokenize_ja
    from mt.translate import translate_lines

    translator = Translator.from_checkpoint(best_checkpoint(tiny_run))
    lines = ["I am a student. He didn't come.", "I am a student."]
    scored = decode_and_score(translator, Pairs(lines, ["私は学生です。", "私は学生です。"], False), beam=2)
    printed = [t.outputs[0].text for t in translate_lines(translator, lines, beam=2)]
    assert [o.text for o in scored.outputs] == printed
    one_by_one = [translator.translate([s], beam=2)[0][0].text for s in ("I am a student.", "He didn't come.")]
    assert printed[0] == detokenize_ja(one_by_one)  # sentence by sentence, not the line decoded whole
