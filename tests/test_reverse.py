"""The reverse direction: `mt train` on ja-en (data.direction), translating and scoring English, and the beam
reranked by a ja-en model (mt/reverse.py)."""

from __future__ import annotations

import json
import re

import pytest

from mt import config
from mt.errors import MTError
from mt.reverse import Reverse
from mt.sentences import plan_line, split_japanese
from mt.text import detokenize_en, normalize_en
from mt.translate import Output, Translator
from tests.helpers import cli_translate, one_line_error, runs_in, shared_runs, train_tiny

JA_EN = ['data.direction="ja-en"']


@pytest.fixture(scope="module")
def ja_en():
    """A tiny ja-en run on `sample` (trained once: pytest may set a module's fixtures up again for each of
    tiny_run's families)."""
    folder = shared_runs("reverse")
    if (folder / "ja-en" / "best.safetensors").exists():
        return folder / "ja-en"
    with runs_in(folder):
        return train_tiny("transformer", "ja-en", epochs=6, extra=JA_EN)


def test_direction_sets_which_side_each_tokenizer_reads():
    forward = config.DataConfig().resolved(tokenized=False)
    assert (forward.langs, forward.src_tokenizer, forward.tgt_tokenizer) == (("en", "ja"), "en", "janome")
    reverse = config.DataConfig(direction="ja-en").resolved(tokenized=True)
    # a ja-en model reads raw Japanese, even from a pre-tokenized corpus: janome re-segments it
    assert (reverse.langs, reverse.src_tokenizer, reverse.tgt_tokenizer) == (("ja", "en"), "janome", "en")
    assert reverse.japanese_tokenizer == "janome" and config.DataConfig().resolved(True).japanese_tokenizer == "space"
    with pytest.raises(MTError, match=r"data.src_tokenizer = 'janome' does not read English.*valid: auto, en, space"):
        config.DataConfig(src_tokenizer="janome")
    with pytest.raises(MTError, match="data.tgt_tokenizer = 'janome' does not read English"):
        config.DataConfig(direction="ja-en", tgt_tokenizer="janome")
    with pytest.raises(MTError, match="data.src_tokenizer = 'none' needs data.subword"):
        config.DataConfig(direction="ja-en", src_tokenizer="none")


@pytest.mark.parametrize("text", ["I'm here.", 'He said "hello" to me.', "Don't worry, I can't go (really) at 5 o'clock!",
                                  "Is it 3.5 km?", "We've got 10 % left; that's all."])
def test_english_detokenizer_inverts_the_normalizer(text):
    tokens = normalize_en(text).split()
    written = detokenize_en(tokens)
    assert normalize_en(written) == " ".join(tokens)  # nothing lost or added
    assert written[0].isupper() and "  " not in written and " ." not in written and " '" not in written


def test_japanese_lines_split_at_sentence_ends_only():
    assert split_japanese("駅に行った。電車が遅れた！？「本当？」と彼は言った。") == [
        "駅に行った。", "電車が遅れた！？", "「本当？」と彼は言った。"]
    assert split_japanese("3.5キロ歩いた、そして帰った") == ["3.5キロ歩いた、そして帰った"]
    assert plan_line("駅に行った。電車が遅れた。", 50, len, clauses=3, lang="ja").pieces == ["駅に行った。", "電車が遅れた。"]
    assert plan_line("I went. It rained.", 50, len, lang="en").pieces == ["I went.", "It rained."]


def test_ja_en_run_trains_translates_and_scores_english(ja_en, monkeypatch, capsys):
    records = [json.loads(x) for x in (ja_en / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "epoch" in r] == list(range(1, 7))
    info = json.loads((ja_en / "info.json").read_text())
    assert "tok:mt-en" in info["bleu_signature"]
    out = cli_translate(["私は学生です。彼は来なかった。", "", "犬が好きです"], monkeypatch, capsys, "--run", str(ja_en))
    assert len(out) == 3 and out[1] == "" and out[0]
    assert not any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", line) for line in out), out  # English: no Japanese
    from mt.cli import main

    assert main(["evaluate", "--run", str(ja_en)]) == 0
    scores = json.loads((ja_en / "eval-test.json").read_text())
    assert "bleu_en" in scores and "bleu_ja" not in scores and "checks" not in scores
    assert scores["src"].endswith("test.ja") and scores["ref"].endswith("test.en")


def test_checks_refuse_a_ja_en_model_in_one_line(ja_en, capsys):
    from mt.cli import main

    capsys.readouterr()
    assert main(["check", "--run", str(ja_en), "--src", __file__, "--hyp", __file__]) != 0
    one_line_error(capsys.readouterr().err, "ja-en", "English sources and Japanese translations")


class _Scores(Reverse):
    """A reverse model whose score is given: the number of source words a translation's text holds."""

    def __init__(self) -> None:
        pass

    def score(self, english, japanese):
        return [float(sum(w in j for w in e.split())) for e, j in zip(english, japanese)]


def test_rerank_adds_the_weighted_reverse_score_and_sorts():
    cands = [[Output("a", "a", -0.1), Output("a b", "a b", -0.5)], [Output("x", "x", -1.0)]]
    same = _Scores().rerank(["a b", "x"], cands, weight=0.0)
    assert [o.text for o in same[0]] == ["a", "a b"] and same[1] == cands[1]  # a lone candidate: untouched
    out = _Scores().rerank(["a b", "x"], cands, weight=1.0)
    assert [o.text for o in out[0]] == ["a b", "a"]  # the one that says both words wins
    assert [o.score for o in out[0]] == pytest.approx([-0.5 + 2.0, -0.1 + 1.0])


def test_beam_reranked_by_a_ja_en_model(ja_en, tiny_run):
    if json.loads((tiny_run / "info.json").read_text())["model"] != "transformer":
        pytest.skip("one forward model is enough")
    lines = ["i like dogs .", "he did not come to school yesterday .", "what time is it ?"]
    plain = Translator.from_checkpoint(tiny_run / "best.safetensors")
    off = Translator.from_checkpoint(tiny_run / "best.safetensors", reverse=str(ja_en), reverse_weight=0.0)
    on = Translator.from_checkpoint(tiny_run / "best.safetensors", reverse=str(ja_en), reverse_weight=10.0)
    base, zero, heavy = (t.translate(lines, nbest=3) for t in (plain, off, on))
    assert [o[0].text for o in zero] == [o[0].text for o in base]  # weight 0: the beam's own order
    reverse = on.reverse()
    for line, outs in zip(lines, heavy):
        assert len(outs) == 3
        back = reverse.score([line] * len(outs), [o.text for o in outs])
        fwd = {o.text: o.score for o in plain.translate([line], nbest=plain.decode.beam)[0]}
        combined = [fwd[o.text] + 10.0 * b for o, b in zip(outs, back)]
        assert combined == sorted(combined, reverse=True)


def test_reverse_must_name_a_ja_en_model(tiny_run):
    t = Translator.from_checkpoint(tiny_run / "best.safetensors", reverse=str(tiny_run))
    with pytest.raises(MTError, match="the reverse model must translate ja-en"):
        t.translate(["i like dogs ."])


# -- `readback`: the source read back from a translation (mt/checks.py, Reverse.read_back) -----------------

def test_readback_flags_each_word_read_back_under_the_threshold():
    from mt import checks

    words = [("printer", -12.5), ("working", -3.0), ("printer", -11.0)]
    assert str(checks.readback(words)) == "readback (printer)"  # once, however often
    assert checks.readback(words, below=-13.0) is None
    assert checks.readback([]) is None
    assert [f.name for f in checks.check_line("Tom wants books.", "トムは本が欲しいです。", read=words)] == ["readback"]


def test_read_back_gives_each_known_content_word_its_log_probability(ja_en):
    from mt.checks import content_word
    from mt.corpora import SAMPLE_TSV

    pairs = [line.split("\t") for line in SAMPLE_TSV.read_text(encoding="utf-8").splitlines()[:8]]
    english, japanese = [e for e, _ in pairs], [j for _, j in pairs]
    japanese[1] = japanese[0]  # a translation of another sentence
    reverse = Reverse.load(str(ja_en), torch_cpu())
    read = reverse.read_back(english, japanese)
    assert len(read) == len(english) and any(read)
    for e, words in zip(english, read):
        tokens = reverse.tgt_pipe.tokenize(e)
        assert [w for w, _ in words] == [t for t in tokens if content_word(t) and t in reverse.tgt_vocab.stoi]
        assert all(lp <= 0 for _, lp in words)
    for i in range(len(english)):  # a line reads the same alone as in the batch
        alone = reverse.read_back([english[i]], [japanese[i]])[0]
        assert [w for w, _ in alone] == [w for w, _ in read[i]]
        assert [lp for _, lp in alone] == pytest.approx([lp for _, lp in read[i]], abs=1e-4)
    assert reverse.read_back(["Tom wants books.", ""], ["", "トムは本が欲しいです。"]) == [[], []]


def torch_cpu():
    import torch

    return torch.device("cpu")


def test_mt_check_reverse_reads_each_translation_back(ja_en, tiny_run, tmp_path, capsys):
    from mt.cli import main
    from mt.corpora import SAMPLE_TSV

    pairs = [line.split("\t") for line in SAMPLE_TSV.read_text(encoding="utf-8").splitlines()[:6]]
    src, hyp, out = tmp_path / "src.en", tmp_path / "hyp.ja", tmp_path / "flags.json"
    src.write_text("".join(e + "\n" for e, _ in pairs), encoding="utf-8")
    hyp.write_text("".join(j + "\n" for _, j in pairs), encoding="utf-8")
    base = ["check", "--src", str(src), "--hyp", str(hyp), "--reverse", str(ja_en), "--json", str(out)]
    assert main([*base, "--readback-below", "0"]) == 0  # every word read back is below log p = 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["readback_below"] == 0
    with_words = sum(bool(line["readback"]) for line in report["lines"])
    assert report["totals"]["readback"] == with_words > 0
    assert main([*base, "--readback-below=-1e9"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["totals"]["readback"] == 0
    assert "readback 0" in capsys.readouterr().out
    assert main(["check", "--src", str(src), "--hyp", str(hyp), "--readback-below=-5"]) != 0
    one_line_error(capsys.readouterr().err, "--reverse")
    assert main(["check", "--src", str(src), "--hyp", str(hyp), "--reverse", str(tiny_run)]) != 0
    one_line_error(capsys.readouterr().err, "ja-en")
    assert main(["check", "--src", str(src), "--hyp", str(hyp)]) == 0
    assert "readback: skipped (no ja→en model given (--reverse RUN))" in capsys.readouterr().out


def test_a_translator_that_reranks_with_a_reverse_model_is_checked_by_it_too(ja_en, tiny_run):
    from mt import check_model

    path = tiny_run / "best.safetensors"
    plain = check_model.for_translator(Translator.from_checkpoint(path), path)
    assert "readback" not in plain.checked() and "readback" in plain.skipped
    reranked = Translator.from_checkpoint(path, reverse=str(ja_en), reverse_weight=1.0)
    checker = check_model.for_translator(reranked, path)
    assert "readback" in checker.checked() and "readback" not in checker.skipped
    assert checker.reader.__self__ is reranked.reverse()  # the model that reranked reads back, loaded once
