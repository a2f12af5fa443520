"""Mixed corpora and held-out removal (mt/mixing.py, mt/heldout.py), `mt corpus overlap`, `--corpus` evaluation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mt import corpora, mixing, overlap
from mt.cli import main
from mt.errors import MTError
from mt.heldout import en_key, ja_key
from tests.conftest import tiny_train_args, train_tiny


def _corpus(folder: Path, splits: dict[str, list[tuple[str, str]]], tokenized: bool = False) -> Path:
    folder.mkdir(parents=True)
    for split, pairs in splits.items():
        (folder / f"{split}.en").write_text("".join(en + "\n" for en, _ in pairs), encoding="utf-8")
        (folder / f"{split}.ja").write_text("".join(ja + "\n" for _, ja in pairs), encoding="utf-8")
    if tokenized:
        (folder / "TOKENIZED").write_text("")
    return folder


@pytest.fixture
def three(tmp_path) -> tuple[Path, Path, Path]:
    """A: pre-tokenized, lowercased (as small_parallel_enja); B: raw (as Tatoeba); C: dev/test only."""
    a = _corpus(tmp_path / "a", {
        "train": [("i 'm going home .", "私 は 家 に 帰る 。"), ("where is the station ?", "駅 は どこ です か 。"),
                  ("good morning .", "おはよう 。"), ("he runs fast .", "彼 は 速く 走る 。")],
        "dev": [("i 'm going home .", "家 に 帰る 。")],
        "test": [("the cat sleeps .", "猫 が 寝て いる 。")]}, tokenized=True)
    b = _corpus(tmp_path / "b", {
        "train": [("The cat  sleeps!", "猫が寝ている！"), ("I'm going home.", "家に帰ります。"),
                  ("Hello there.", "こんにちは。"), ("nice to meet you", "はじめまして")],
        "dev": [("Good morning.", "おはようございます。")],
        "test": [("See you tomorrow.", "また明日。")]})
    c = _corpus(tmp_path / "c", {"dev": [("Nice to meet you.", "はじめまして。")],
                                 "test": [("Thank you very much.", "どうもありがとう。")]})
    return a, b, c


def test_keys_ignore_case_spacing_punctuation_and_tokenisation():
    assert en_key("Don't go, Mr. Tanaka!") == en_key("don 't go mr. tanaka .") == en_key("  DON'T go Mr. Tanaka")
    assert en_key("I'm going home.") != en_key("I'm going home now.")
    assert en_key("...") == "" and ja_key("今日 は 晴れ 。") == ja_key("今日は晴れ") != ja_key("今日は雨")


def test_a_mix_removes_every_held_out_line_exactly_and_after_normalisation(three):
    a, b, c = three
    folder, tokenized = corpora.resolve(f"{a}+{b}", exclude=[str(c)])
    train = (folder / "train.en").read_text(encoding="utf-8").splitlines()
    assert sorted(train) == ["Hello there.", "he runs fast .", "where is the station ?"]
    record = mixing.read_record(folder)
    held = record["held_out"]
    # A's dev "i 'm going home ." is in A's train (identical) and in B's train as "I'm going home." (normalised)
    assert held[str(a)] == {"lines": 2, "removed": 3, "identical": 1}  # + B's "The cat  sleeps!"
    assert held[str(b)] == {"lines": 2, "removed": 1, "identical": 0}  # A's "good morning ."
    assert held[str(c)] == {"lines": 2, "removed": 1, "identical": 0}  # B's "nice to meet you"
    assert record["train"] == {str(a): {"pairs": 4, "kept": 2, "removed": 2},
                               str(b): {"pairs": 4, "kept": 1, "removed": 3}}
    assert (record["removed"], record["kept"]) == (5, 3)
    # two members meet in the raw representation; dev and test are A's, its Japanese detokenized
    assert not tokenized and not (folder / "TOKENIZED").exists()
    assert (folder / "dev.ja").read_text(encoding="utf-8") == "家に帰る。\n"
    assert (folder / "test.en").read_text(encoding="utf-8") == "the cat sleeps .\n"
    line = mixing.describe(record)
    assert line.startswith("removed from training: 5 pairs") and f"1 in {c}'s 2 dev/test lines" in line


def test_a_mix_interleaves_its_members_so_a_limit_takes_from_each(tmp_path):
    a = _corpus(tmp_path / "a", {"train": [(f"a sentence {i} .", f"文 {i}") for i in range(8)],
                                 "dev": [("a dev .", "デ")], "test": [("a test .", "テ")]})
    b = _corpus(tmp_path / "b", {"train": [(f"B sentence {i}.", f"文{i}") for i in range(4)],
                                 "dev": [("B dev.", "デ")], "test": [("B test.", "テ")]})
    folder, _ = corpora.resolve(f"{a}+{b}")
    train = (folder / "train.en").read_text().splitlines()
    assert len(train) == 12 and {line[0] for line in train[:3]} == {"a", "B"}
    assert [line for line in train if line.startswith("a")] == [f"a sentence {i} ." for i in range(8)]


def test_one_corpus_with_exclusions_keeps_its_representation_and_the_cache_follows_the_files(three):
    a, _, c = three
    folder, tokenized = corpora.resolve(str(a), exclude=[str(c)])
    assert tokenized and (folder / "train.ja").read_text(encoding="utf-8").splitlines()[0] == "駅 は どこ です か 。"
    assert corpora.resolve(str(a), exclude=[str(c)])[0] == folder  # cached
    (c / "dev.en").write_text("Where is the station?\n")
    again, _ = corpora.resolve(str(a), exclude=[str(c)])
    assert again != folder and mixing.read_record(again)["held_out"][str(c)]["removed"] == 1


def test_bad_mixes_are_one_clear_line(tmp_path, capsys, three):
    a, _, c = three
    cases = [(["--corpus", "sample+nope"], "config data.corpus: unknown corpus 'nope' in 'sample+nope'; known: sample"),
             (["--corpus", "sample+sample"], "sample is in the mix twice"),
             (["--corpus", "sample+"], "empty name in the mix"),
             (["--corpus", "sample", "--set", 'data.exclude=["evryday"]'], "config data.exclude: unknown corpus 'evryday'"),
             (["--corpus", "sample", "--set", 'data.exclude="everyday"'], "config data.exclude: expected a list"),
             (["--corpus", "everyday"], "corpus 'everyday' has dev and test only (an evaluation set)"),
             (["--corpus", f"{c}+everyday"], "no member has a train split")]
    for flags, message in cases:
        args = tiny_train_args("transformer", "bad-mix", 1)
        at = args.index("--corpus")
        assert main(args[:at] + args[at + 2:] + flags) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (flags, err)
    assert not (Path(os.environ["MT_RUNS_DIR"]) / "bad-mix").exists()
    with pytest.raises(MTError, match="line counts differ"):
        (a / "dev.ja").write_text("一\n二\n")
        corpora.resolve(f"{a}+sample")


def test_mt_train_prints_and_records_what_it_removed(tmp_path, capsys):
    folder, _ = corpora.resolve("sample")
    train = (folder / "train.en").read_text(encoding="utf-8").splitlines()
    seen = train[3]
    held = _corpus(tmp_path / "held", {"dev": [(seen.upper().replace(" ", "  ").rstrip(".!?"), "x")],
                                       "test": [("A line nobody wrote anywhere.", "y")]})
    run = train_tiny("transformer", "mix-record", 1, [f'data.exclude=["{held}"]'])
    out = capsys.readouterr().out
    record = json.loads((run / "info.json").read_text())["removed_from_training"]
    assert record["held_out"][str(held)] == {"lines": 2, "removed": 1, "identical": 0}
    assert record["train"]["sample"] == {"pairs": len(train), "kept": len(train) - record["removed"],
                                         "removed": record["removed"]}
    assert f"removed from training: {record['removed']} pair" in out
    assert f"1 in {held}'s 2 dev/test lines (0 identical, 1 only after normalisation)" in out


def test_overlap_counts_each_direction_exactly_and_normalised(three, capsys):
    a, b, _ = three
    rows = {(r["corpus"], r["split"], r["in"], r["in_split"]): r for r in overlap.measure(str(a), str(b))}
    assert rows[(str(a), "dev", str(b), "train")] == {**rows[(str(a), "dev", str(b), "train")],
                                                      "lines": 1, "exact": 0, "normalised": 1, "ja_normalised": 0}
    assert rows[(str(a), "test", str(b), "train")]["normalised"] == 1
    assert rows[(str(b), "dev", str(a), "train")]["normalised"] == 1
    assert rows[(str(b), "test", str(a), "train")]["normalised"] == 0
    assert rows[(str(a), "train", str(b), "train")]["normalised"] == 1  # i 'm going home . = I'm going home.
    self_rows = {(r["split"], r["in_split"]): r for r in overlap.measure(str(a), str(a))}
    assert self_rows[("dev", "train")]["exact"] == 1 and ("dev", "dev") not in self_rows
    assert main(["corpus", "overlap", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"{a} dev" in out and "normalised" in out
    assert main(["corpus", "overlap", str(a), "nope"]) == 2
    assert "neither a known name" in capsys.readouterr().err


@pytest.fixture(scope="module")
def raw_run() -> Path:
    """A tiny Transformer trained one epoch on `sample` (raw text, janome words)."""
    return train_tiny("transformer", "mix-eval", 1)


def test_everyday_is_shipped_for_evaluation_and_compare(raw_run, capsys):
    assert main(["corpus", "fetch", "everyday"]) == 0
    folder = corpora.fetch("everyday")
    assert corpora.count_lines(folder / "test.en") == corpora.count_lines(folder / "test.tags") >= 150
    assert corpora.count_lines(folder / "dev.en") + corpora.count_lines(folder / "test.en") >= 300
    run = raw_run
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--corpus", "everyday", "--beam", "1"]) == 0
    scores = json.loads((run / "eval-everyday-test.json").read_text(encoding="utf-8"))
    assert scores["src"] == str(folder / "test.en") and "bleu_tok" not in scores
    assert corpora.count_lines(run / "hyps-everyday-test.txt") == corpora.count_lines(folder / "test.en")
    assert not (run / "eval-test.json").exists()
    assert main(["compare", str(run), "--corpus", "everyday"]) == 0
    assert "mix-eval" in capsys.readouterr().out


def test_a_raw_model_is_scored_on_plain_text_against_a_tokenized_corpus(tmp_path, raw_run):
    tok = _corpus(tmp_path / "tok", {"train": [("hello .", "こんにち は 。")], "dev": [("good night .", "お やすみ 。")],
                                     "test": [("thank you .", "ありがとう ござい ます 。")]}, tokenized=True)
    run = raw_run
    assert main(["evaluate", "--run", str(run), "--corpus", str(tok), "--beam", "1"]) == 0
    scores = json.loads((run / "eval-tok-test.json").read_text(encoding="utf-8"))
    assert "bleu_tok" not in scores and Path(scores["ref"]).read_text(encoding="utf-8") == "ありがとうございます。\n"


def test_a_mixed_run_trains_and_scores_on_its_first_members_test(three, capsys):
    a, _, _ = three
    args = tiny_train_args("transformer", "mix-run", 1)
    args[args.index("--corpus") + 1] = f"sample+{a}"
    assert main(args) == 0
    run = Path(os.environ["MT_RUNS_DIR"]) / "mix-run"
    info = json.loads((run / "info.json").read_text())
    assert info["corpus"] == f"sample+{a}" and info["removed_from_training"]["members"] == ["sample", str(a)]
    assert main(["evaluate", "--run", str(run), "--beam", "1"]) == 0
    scores = json.loads((run / "eval-test.json").read_text(encoding="utf-8"))
    sample_test = corpora.resolve("sample")[0] / "test.en"
    assert Path(scores["src"]).read_text(encoding="utf-8") == sample_test.read_text(encoding="utf-8")
    assert Path(scores["src"]).parent == Path(info["corpus_dir"])
