"""The `dropped` check (mt/checks.py's rule, mt/dropped.py's erasure): source words a translation ignores."""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor, nn

from mt import check_model, checks, experiments
from mt.checks import Checker, content_word
from mt.cli import main
from mt.dropped import Erasure, words_of
from mt.errors import MTError
from mt.translate import Translator
from mt.vocab import EOS, Vocab
from tests.conftest import train_tiny


@pytest.mark.parametrize("word, content", [
    ("station", True), ("Kyoto", True), ("never", True), ("'t", True), ("not", True),  # negations count
    ("the", False), ("and", False), ("got", False), ("don", False), ("himself", False), ("is", False),
    ("5,000", False), (".", False),  # numbers are the `number` check's, punctuation nobody's
])
def test_content_words(word, content):
    assert content_word(word) is content


def test_the_rule_flags_each_ignored_word_once_and_only_those():
    assert str(checks.dropped([("station", 4.2), ("late", -0.3), ("train", -1.5), ("late", -2.0)])) == \
        "dropped (late, train)"
    assert checks.dropped([("station", 4.2), ("train", 0.0)]) is None  # as likely without it: not likelier
    assert checks.dropped([]) is None


def test_words_of_joins_sentencepiece_pieces_and_keeps_words_whole():
    assert words_of(["▁I", "▁went", "▁to", "▁Kyo", "to", "▁."]) == \
        [("I", [0]), ("went", [1]), ("to", [2]), ("Kyoto", [3, 4]), (".", [5])]
    assert words_of(["i", "went", "to", "kyoto", "."]) == [("i", [0]), ("went", [1]), ("to", [2]), ("kyoto", [3]),
                                                         (".", [4])]


class Scripted(nn.Module):
    """A model whose output token 4 is likelier with source id 5 (*cat*) and less likely with id 6 (*dog*): a
    translation saying 4 expresses the cat and ignores the dog."""

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> Tensor:
        B, T = tgt_in.shape
        logits = torch.zeros(B, T, 8)
        has_cat = (src == 5).any(1).float()[:, None]  # (B, 1)
        has_dog = (src == 6).any(1).float()[:, None]
        logits[:, :, 4] = 3 * has_cat - 2 * has_dog
        logits[:, :, EOS] = 1.0
        return logits

    def max_output_positions(self) -> int:
        return 6


WORDS = {"the": 7, "cat": 5, "dog": 6, "and": 7}


def _erasure(batch_size: int = 64) -> Erasure:
    def source(text: str) -> tuple[list[str], list[int]]:
        tokens = text.split()
        return tokens, [WORDS[t] for t in tokens]
    vocab = Vocab(["<pad>", "<unk>", "<s>", "</s>", "猫", "x", "y", "z"])
    return Erasure(Scripted(), source, lambda text: list(text), vocab, torch.device("cpu"), batch_size)


def test_erasure_finds_the_word_the_translation_ignores():
    deltas = _erasure()(["the cat and the dog"], ["猫"])[0]
    assert [w for w, _ in deltas] == ["cat", "dog"]  # content words only
    by_word = dict(deltas)
    assert by_word["cat"] > 0 > by_word["dog"]
    assert str(checks.dropped(deltas)) == "dropped (dog)"
    assert checks.dropped(_erasure()(["the cat"], ["猫"])[0]) is None


def test_erasure_reads_a_batch_as_it_reads_each_line():
    lines, outputs = ["the cat", "", "the dog and the cat", "cat", "dog"], ["猫", "猫", "猫猫", "", "猫" * 20]
    together = _erasure(batch_size=3)(lines, outputs)
    alone = [_erasure(batch_size=1)([s], [h])[0] for s, h in zip(lines, outputs)]
    assert together[1] == [] and together[3] == []  # an empty side: nothing to read
    assert together[4][0][1] < 0  # an output past the model's positions is read as far as they go
    for a, b in zip(together, alone):
        assert [w for w, _ in a] == [w for w, _ in b]
        assert all(abs(x - y) < 1e-5 for (_, x), (_, y) in zip(a, b))


def test_a_checker_with_erasure_flags_dropped_and_counts_it():
    checker = Checker(erasure=_erasure())
    flags = checks.check_lines(["the cat and the dog", "the cat"], ["猫", "猫"], checker)
    assert [[f.name for f in line] for line in flags] == [["dropped"], []]
    assert checks.totals(flags, checker.checked())["dropped"] == 1
    assert "dropped" not in Checker().checked()


# -- with a trained model --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_run():
    return train_tiny("transformer", "dropped-tf", epochs=2)


def test_mt_check_dropped_with_a_model_and_without(model_run, tmp_path, capsys):
    src, hyp = tmp_path / "src.en", tmp_path / "hyp.ja"
    src.write_text("I am a student.\nWhere is the station?\n", encoding="utf-8")
    hyp.write_text("私は学生です。\n駅はどこですか。\n", encoding="utf-8")
    out_json = tmp_path / "flags.json"
    assert main(["check", "--run", str(model_run), "--src", str(src), "--hyp", str(hyp), "--dropped",
                 "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert "dropped" in report["totals"] and "dropped" not in report["skipped"]
    capsys.readouterr()
    assert main(["check", "--src", str(src), "--hyp", str(hyp), "--dropped"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dropped needs a model" in err


def test_translate_check_dropped_leaves_stdout_alone(model_run, monkeypatch, capsys):
    import io

    lines = "I am a student.\n\nWhere is the station?\n"

    def stdin():
        class Stdin:
            buffer = io.BytesIO(lines.encode())
        monkeypatch.setattr("sys.stdin", Stdin())

    stdin()
    assert main(["translate", "--run", str(model_run)]) == 0
    plain = capsys.readouterr().out
    stdin()
    assert main(["translate", "--run", str(model_run), "--check", "--dropped"]) == 0
    checked = capsys.readouterr()
    assert checked.out == plain and "dropped: skipped" not in checked.err
    stdin()
    assert main(["translate", "--run", str(model_run), "--dropped"]) == 2
    assert "give --check --dropped" in capsys.readouterr().err


def test_a_model_reading_corpus_tokens_skips_dropped_and_says_why(model_run):
    translator = Translator.from_checkpoint(experiments.best_checkpoint(model_run))
    translator.tgt_pipe.pre, translator.tgt_pipe.sp_model = "space", None
    checker = check_model.for_translator(translator, dropped=True)
    assert checker.erasure is None and "corpus tokens" in checker.skipped["dropped"]
    assert "dropped" not in checker.checked()


def test_labels_read_yes_no_columns_and_judgements(tmp_path):
    read = tmp_path / "read.tsv"
    read.write_text("line\tdropped\tmissing\n1\tyes\twarm\n2\tno\n", encoding="utf-8")
    assert checks.read_labels(read) == {"dropped": {1: True, 2: False}, "readback": {1: True, 2: False}}  # readback's too
    judged = tmp_path / "judged.tsv"
    judged.write_text("line\tmark\tcause\tnote\n1\twrong\tdropped\tx\n2\tfull\t\t\n3\tdetail\tnumber\t\n", encoding="utf-8")
    labels = checks.read_labels(judged)
    assert labels["dropped"] == {1: True, 2: False, 3: False} and labels["number"] == {1: False, 2: False, 3: True}
    assert labels["full"] == {1: False, 2: True, 3: False} and labels["wrong"] == {1: True, 2: False, 3: False}
    assert labels["readback"] == {1: True, 2: False, 3: False}  # dropped, a wrong word or inverted
    rep = {"lines": [{"line": 1, "flags": ["dropped"]}, {"line": 2, "flags": ["dropped"]}, {"line": 3, "flags": []}],
           "totals": {"number": 0, "dropped": 2}}
    out = checks.agreement(rep, labels)
    assert "on the 1 lines read as full meaning: 1 flagged (number 0, dropped 1)" in out
    assert "on the 1 lines read as wrong: 1 flagged (number 0, dropped 1)" in out
    assert "dropped: flags 1 of the 1 lines read as having it (100%) and 1 of the 2 others (50%); precision 50%" in out
    assert "number: flags 0 of the 1 lines read as having it (0%) and 0 of the 2 others (0%); precision 0%" in out
    bad = tmp_path / "bad.tsv"
    bad.write_text("line\tdropped\none\tyes\n", encoding="utf-8")
    with pytest.raises(MTError, match=r"bad.tsv:2: line 'one' is not a number"):
        checks.read_labels(bad)


def test_a_stricter_threshold_flags_fewer_lines(model_run, tmp_path, capsys):
    src, hyp = tmp_path / "src.en", tmp_path / "hyp.ja"
    src.write_text("I am a student.\nWhere is the station?\nI like green tea very much.\n", encoding="utf-8")
    hyp.write_text("私です。\n駅。\nお茶が好き。\n", encoding="utf-8")
    counts = []
    for below in ("5", "0", "-5"):
        out = tmp_path / f"flags{below}.json"
        assert main(["check", "--run", str(model_run), "--src", str(src), "--hyp", str(hyp), "--dropped",
                     "--dropped-below", below, "--json", str(out)]) == 0
        report = json.loads(out.read_text(encoding="utf-8"))
        assert report["dropped_below"] == float(below) and all("erasure" in x for x in report["lines"])
        counts.append(report["totals"]["dropped"])
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
