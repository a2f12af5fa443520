"""Sentence splitting (mt/sentences.py): the splitting table, over-long sentences cut into pieces that fit,
and `mt translate` translating a line sentence by sentence."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from mt import search
from mt.cli import main
from mt.experiments import best_checkpoint
from mt.sentences import coordinated, plan_line, split_clauses, split_sentences
from mt.text import detokenize_ja
from mt.translate import Translator, translate_lines
from mt.vocab import UNK
from tests.conftest import MIRROR, needs_mirror

SPLITS = [
    ("Hello world. How are you?", ["Hello world.", "How are you?"]),
    ("Mr. Smith went to Washington. He liked it.", ["Mr. Smith went to Washington.", "He liked it."]),
    ("Mrs. Brown and Dr. Green met Prof. White.", ["Mrs. Brown and Dr. Green met Prof. White."]),
    ("I'm 3.5 years older than Mr. Smith.", ["I'm 3.5 years older than Mr. Smith."]),
    ("It costs $3.50. That is cheap.", ["It costs $3.50.", "That is cheap."]),
    ("Version 2.0.1 is out. Get it now.", ["Version 2.0.1 is out.", "Get it now."]),
    ("Wait... Then he left.", ["Wait... Then he left."]),
    ("Wait… Then he left.", ["Wait… Then he left."]),
    ("Wait . . . Then he left.", ["Wait . . . Then he left."]),
    ("J. K. Rowling wrote it. It sold well.", ["J. K. Rowling wrote it.", "It sold well."]),
    ("George W. Bush was born in 1946.", ["George W. Bush was born in 1946."]),
    ('"So do I." She laughed.', ['"So do I."', "She laughed."]),
    ("Really?! No way!", ["Really?!", "No way!"]),
    ("What?!? Are you sure?!", ["What?!?", "Are you sure?!"]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ('"Stop!" he said. "Why?" she asked.', ['"Stop!" he said.', '"Why?" she asked.']),
    ("(See above.) Next we go.", ["(See above.)", "Next we go."]),
    ("I live in the U.S. The weather is nice.", ["I live in the U.S.", "The weather is nice."]),
    ("The U.S. Army is big. The U.K. is small.", ["The U.S. Army is big.", "The U.K. is small."]),
    ("Meet me at 5 p.m. The train leaves at 6.", ["Meet me at 5 p.m.", "The train leaves at 6."]),
    ("I saw e.g. Tom and i.e. Ken there.", ["I saw e.g. Tom and i.e. Ken there."]),
    ("Apples, pears, etc. Then I went home.", ["Apples, pears, etc.", "Then I went home."]),
    ("We met on Jan. 5 in St. Louis.", ["We met on Jan. 5 in St. Louis."]),
    ("See No. 5 for details.", ["See No. 5 for details."]),
    ("No. I am sorry.", ["No.", "I am sorry."]),
    ("It was 1995. 20 people came.", ["It was 1995.", "20 people came."]),
    ("hello world", ["hello world"]),
    ("Hi.   How are you?  ", ["Hi.", "How are you?"]),
    ("Hi.How are you?", ["Hi.How are you?"]),  # no space: a file name or a typo, not a boundary
    ("Call me at home. i am in.", ["Call me at home. i am in."]),  # a lowercase word never opens a sentence
    (".", ["."]),
    ("", []),
    ("   ", []),
    ("Mr . Smith came . He sat .", ["Mr . Smith came .", "He sat ."]),  # tokenized, capitalized
    # small_parallel_enja's lowercase tokenized lines stay whole
    ("by all means . go ahead .", ["by all means . go ahead ."]),
    ("i 'm 3.5 years older than mr . smith .", ["i 'm 3.5 years older than mr . smith ."]),
    ("mr. smith doesn 't speak english , does he ?", ["mr. smith doesn 't speak english , does he ?"]),
    ("again ? not again ! !", ["again ? not again ! !"]),
    ("i lived for years ... and years .", ["i lived for years ... and years ."]),
    ("the job must be finished by 3 p.m.", ["the job must be finished by 3 p.m."]),
]


@pytest.mark.parametrize(("line", "expected"), SPLITS)
def test_split_sentences(line, expected):
    assert split_sentences(line) == expected


@needs_mirror
def test_small_parallel_enja_lines_stay_whole():
    """Each corpus line is translated as one piece, so splitting cannot change a score on the corpus."""
    for split in ("train", "dev", "test"):
        lines = (MIRROR / "small_parallel_enja" / f"{split}.en").read_text(encoding="utf-8").splitlines()
        whole = [line for line in lines if split_sentences(line) != [line.strip()]]
        assert whole == [], (split, whole[:5])


def _words(text: str) -> int:
    return len(text.split()) + 1  # as normalize_en: one more token for the end mark it may add


LONG = ("when I was young I lived in a small town by the sea, and every morning I walked to the harbour; "
        "the fishermen sold their catch there, shouting prices at the tourists: it was loud and I loved it")


def test_an_over_long_sentence_is_cut_at_its_punctuation_first():
    pieces = split_clauses(LONG, 15, _words)
    assert " ".join(pieces).split() == LONG.split()  # nothing lost, nothing reordered
    assert all(_words(p) <= 15 for p in pieces)
    assert [p[-1] for p in pieces[:-1]] == [",", ";", ":"]  # every cut at a clause mark, none between words
    assert split_clauses(LONG, 200, _words) == [LONG]  # a sentence that fits comes back whole


def test_without_punctuation_words_then_characters():
    words = " ".join(f"w{i}" for i in range(50))
    pieces = split_clauses(words, 10, _words)
    assert " ".join(pieces) == words and all(_words(p) <= 10 for p in pieces) and len(pieces) == 6
    assert split_clauses("x" * 25, 10, len) == ["x" * 10, "x" * 10, "x" * 5]  # one word too long by itself
    conj = "I stayed at home and read a book because it rained but my brother went out"
    assert split_clauses(conj, 7, _words) == ["I stayed at home", "and read a book", "because it rained",
                                              "but my brother went out"]


def test_plan_notes_every_cut_and_every_truncation():
    line = f"Hello there. W{LONG[1:]}. Bye."
    plan = plan_line(line, 15, _words)
    assert plan.pieces[0] == "Hello there." and plan.pieces[-1] == "Bye." and len(plan.pieces) == 6
    assert plan.notes == ["sentence 2 of 3, 40 tokens, more than the model's limit of 15: translated in 4 pieces "
                          "split at clause punctuation and commas"]
    whole = plan_line(line, 15, _words, split=False)
    assert whole.pieces == [line] and "truncated" in whole.notes[0] and "splitting is off" in whole.notes[0]
    assert plan_line("Hi. Bye.", 25, _words, split=False).notes == []
    assert plan_line("   ", 25, _words) == plan_line("", 25, _words, split=False) == plan_line("", 5, _words)
    assert plan_line("   ", 25, _words).pieces == []


# ---- `mt translate`: sentences in, sentences out -------------------------------------------------------------

THREE = "I am a student. Where is the station? Thank you!"
LONG_LINE = ", ".join(["I like tea and you like coffee"] * 40) + "."  # about 320 tokens: over the limit of 200


class _Stdin:
    def __init__(self, data: str) -> None:
        self.buffer = io.BytesIO(data.encode())


def _mt_translate(monkeypatch, capsys, lines: list[str], *args: str) -> tuple[list[str], str]:
    monkeypatch.setattr(sys, "stdin", _Stdin("".join(line + "\n" for line in lines)))
    capsys.readouterr()
    assert main(["translate", *args]) == 0
    cap = capsys.readouterr()
    return cap.out.split("\n")[:-1], cap.err


CLAUSES = [  # (sentence, its clauses at decode.clauses = 6)
    ("It was sunny this morning, but it started raining in the afternoon.",
     [("", "It was sunny this morning."), ("しかし、", "It started raining in the afternoon.")]),
    ("When we arrived at the station, it was raining hard, so we took a taxi to the hotel.",
     [("", "When we arrived at the station, it was raining hard."), ("だから、", "We took a taxi to the hotel.")]),
    ("I wanted to go but I was too busy with work?", [("", "I wanted to go."), ("しかし、", "I was too busy with work?")]),
    ("We stayed in Nara for three nights, and then we went to Kyoto by train.",
     [("", "We stayed in Nara for three nights."), ("それから、", "We went to Kyoto by train.")]),
    ("He is rich, but he isn't happy, and his wife knows it well.",
     [("", "He is rich."), ("しかし、", "He isn't happy."), ("そして、", "His wife knows it well.")]),
    ("i was tired and so i went to bed early .", [("", "I was tired."), ("だから、", "I went to bed early .")]),
]
WHOLE = [  # not two clauses, or too short
    "I bought apples, bread, and the milk you wanted.",  # a list
    "My wife and I went to the park and we had lunch.",  # "and" without a comma
    "I hurried, so that I could catch the first train.",  # so that
    "Yes, but I do not like it at all.",  # a clause of one word
    "Did you finish your homework, or did you play games all day?",  # "or": not joined
    "He is rich, but he isn't.",  # six words: not more than 6
]


@pytest.mark.parametrize(("sentence", "expected"), CLAUSES)
def test_coordinated_clauses_are_sentences_with_their_openers(sentence, expected):
    assert coordinated(sentence, 6) == expected
    assert coordinated(sentence, 0) == [("", sentence)]  # off
    assert coordinated(sentence, len(sentence.split())) == [("", sentence)]  # not more words than the setting


@pytest.mark.parametrize("sentence", WHOLE)
def test_lists_short_clauses_and_other_joins_stay_whole(sentence):
    assert coordinated(sentence, 6) == [("", sentence)]


def test_plan_puts_each_clause_after_its_sentence_and_openers_beside_the_pieces():
    line = f"Good morning. {CLAUSES[0][0]} Thank you!"
    plan = plan_line(line, 200, lambda s: len(s.split()), clauses=6)
    assert plan.pieces == ["Good morning.", *[c for _, c in CLAUSES[0][1]], "Thank you!"]
    assert plan.openers == ["", "", "しかし、", ""] and plan.notes == []
    assert plan_line(line, 200, lambda s: len(s.split())).pieces == split_sentences(line)  # clauses = 0: off


def _translator(run: Path) -> Translator:
    return Translator.from_checkpoint(best_checkpoint(run))


def test_a_line_of_three_sentences_translates_as_the_three_do_one_by_one(monkeypatch, capsys, tiny_run):
    run = ("--run", str(tiny_run))
    parts = split_sentences(THREE)
    assert len(parts) == 3
    alone, _ = _mt_translate(monkeypatch, capsys, parts, *run)
    together, err = _mt_translate(monkeypatch, capsys, [THREE, "", parts[0]], *run)
    assert together == [detokenize_ja(alone), "", alone[0]] and "warning" not in err
    alone, _ = _mt_translate(monkeypatch, capsys, parts, *run, "--tokenized")
    together, _ = _mt_translate(monkeypatch, capsys, [THREE], *run, "--tokenized")
    assert together == [" ".join(alone)]
    whole, _ = _mt_translate(monkeypatch, capsys, [THREE, parts[1]], *run, "--no-split")
    tr = _translator(tiny_run)
    assert whole == [o[0].text for o in tr.translate([THREE, parts[1]])]  # the behaviour before splitting


def test_a_line_over_the_limit_is_translated_in_pieces_never_truncated(monkeypatch, capsys, tiny_run):
    tr = _translator(tiny_run)
    assert tr.source_ids(LONG_LINE)[1]  # one sentence, too long for the model
    out, err = _mt_translate(monkeypatch, capsys, [LONG_LINE, "Thank you!"], "--run", str(tiny_run), "--beam", "1")
    assert len(out) == 2 and "truncated" not in err
    assert f"line 1: {len(tr.source_tokens(LONG_LINE))} tokens, more than the model's limit of 200: translated in " in err
    assert "pieces split at commas" in err and "line 2" not in err
    pieces = split_clauses(LONG_LINE, tr.source_limit(), lambda s: len(tr.source_tokens(s)))
    assert len(pieces) >= 2 and not any(tr.source_ids(p)[1] for p in pieces)
    assert out[0] == detokenize_ja([o[0].text for o in tr.translate(pieces, beam=1)])
    out, err = _mt_translate(monkeypatch, capsys, [LONG_LINE], "--run", str(tiny_run), "--beam", "1", "--no-split")
    assert "line 1: longer than 200 tokens, translated from a truncated source" in err
    assert out == [tr.translate([LONG_LINE], beam=1)[0][0].text]


def test_nbest_is_for_lines_translated_whole(monkeypatch, capsys, tiny_run):
    out, err = _mt_translate(monkeypatch, capsys, ["I like tea.", THREE], "--run", str(tiny_run), "--nbest", "2",
                             "--beam", "3")
    assert out[0].count(" ||| ") == 1 and " ||| " not in out[1]
    assert "line 2: translated as 3 sentences or pieces: n-best lists are for a line translated whole" in err
    assert "line 1" not in err


def test_all_sentences_of_a_batch_are_decoded_together_and_unknown_words_copied_per_sentence(tiny_run, monkeypatch):
    tr = _translator(tiny_run)
    calls = []
    real_translate, real_greedy = tr.translate, search.greedy

    def spy(lines, *args):
        calls.append(list(lines))
        return real_translate(lines, *args)

    def unk_first(model, src, src_len, max_len):  # every output starts with <unk>
        return [search.Hypothesis([UNK, *h.tokens], h.score, h.log_prob) for h in real_greedy(model, src, src_len, max_len)]

    monkeypatch.setattr(tr, "translate", spy)
    monkeypatch.setattr("mt.translate.greedy", unk_first)
    lines = ["I like qwertyuiop. Tom likes zxcvbnm.", "", "Asdfgh is here! Where is the station?"]
    out = translate_lines(tr, lines, beam=1)
    assert len(calls) == 1 and len(calls[0]) == 4  # one decoding call for the four sentences of the three lines
    assert [t.outputs[0].text == "" for t in out] == [False, True, False]
    firsts = [t.outputs[0].tokens.split() for t in out]
    assert firsts[0][0] == "qwertyuiop" and "zxcvbnm" in firsts[0] and "<unk>" not in firsts[0]  # each its own
    assert firsts[2][0] == "Asdfgh" and "<unk>" not in firsts[2]  # copied as the user wrote it (mt/lexicon.py)


def test_a_sentence_of_two_clauses_translates_as_the_clauses_do_joined_by_the_opener(tiny_run):
    whole, plain = Translator.from_checkpoint(best_checkpoint(tiny_run), clauses=6), _translator(tiny_run)
    sentence, clauses = CLAUSES[4]
    alone = [o[0] for o in plain.translate([c for _, c in clauses], beam=1)]
    line = translate_lines(whole, [sentence, "Thank you!"], beam=1)
    assert line[0].outputs[0].text == detokenize_ja([t for (o, _), a in zip(clauses, alone) for t in (o, a.text) if t])
    tokens = line[0].outputs[0].tokens.split()
    assert tokens.count("しかし") == 1 and tokens.count("そして") == 1 and tokens.count("、") >= 2
    assert line[1].outputs[0].text == plain.translate(["Thank you!"], beam=1)[0][0].text
    assert translate_lines(plain, [sentence], beam=1)[0].outputs[0].text == plain.translate([sentence], beam=1)[0][0].text
