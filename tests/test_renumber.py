"""decode.numbers = "source" (mt/renumber.py): output numbers that say otherwise become the source's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mt import checks
from mt.cli import main
from mt.experiments import best_checkpoint
from mt.numbers import Number
from mt.renumber import from_source, proxy, render, shape, shapes
from mt.translate import Output, Translator


@pytest.mark.parametrize("src, hyp, fixed", [
    ("These shoes were five thousand yen.", "その靴は５万円だった。", "その靴は５０００円だった。"),
    ("A ticket to Nagoya costs 11,000 yen.", "名古屋までの切符は1,000円です。", "名古屋までの切符は1万1000円です。"),
    ("The train leaves at 7:30.", "列車は７時に出る。", "列車は７時半に出る。"),
    ("The meeting starts at a quarter to nine.", "会議は９時に始まる。", "会議は８時４５分に始まる。"),
    ("The shop opens at nine.", "店は８時に開く。", "店は９時に開く。"),
    ("It is at four in the afternoon.", "午後３時です。", "午後４時です。"),
    ("There are thirty-two students.", "生徒が三十人いる。", "生徒が３２人いる。"),
    ("it costs 5000 yen .", "それ は ５ 万 円 だ 。", "それ は ５０００ 円 だ 。"),  # corpus tokens
    ("Our office is on the fifth floor.", "事務所は４階です。", "事務所は５階です。"),
    ("My birthday is on October 3rd.", "私の誕生日は3月です。", "私の誕生日は10月3日です。"),  # month, then day
    ("It's ten to five now.", "今5時だ。", "今4時50分だ。"),
    ("The train leaves at seven thirty.", "電車は30時に出発する。", "電車は7時半に出発する。"),
    ("The new project begins on April 1st.", "新しい計画は４月に始まる。", "新しい計画は４月１日に始まる。"),
    ("He was born on May 5th, 2012.", "彼は1980年5月5月に生まれた。", "彼は2012年5月5日5月に生まれた。"),  # days aside
    ("Turn left at the second traffic light.", "2つの信号を左に曲がって。", "2つ目の信号を左に曲がって。"),  # ordinal
    ("turn left at the second corner .", "２ つ の 角 を 左 に 曲が っ て 。", "２ つ 目 の 角 を 左 に 曲が っ て 。"),
    ("The third person was late.", "3人が遅れた。", "3人目が遅れた。"),
    ("Turn left at the second light on the 12th floor.", "12階の2つの信号を左に曲がって。", "12階の2つ目の信号を左に曲がって。"),
])
def test_a_number_said_otherwise_is_rewritten_and_then_passes_the_check(src, hyp, fixed):
    assert checks.number(src, hyp) is not None
    assert from_source(src, hyp) == fixed
    assert checks.number(src, fixed) is None


def test_a_day_left_in_english_is_written_with_its_day():
    src, hyp = "The sale ends on the 31st.", "セールは31stに終わる。"
    assert [f.name for f in checks.check_line(src, hyp)] == ["untranslated"]
    assert from_source(src, hyp) == "セールは31日に終わる。"
    assert checks.check_line(src, from_source(src, hyp)) == []
    assert from_source("He came 31st.", "彼は31stだった。") == "彼は31stだった。"  # a rank, not a day
    src = "Our shop will be closed from August 13th to 16th."  # the day that ends a range
    assert from_source(src, "店は8月13日から16thまで閉まる。") == "店は8月13日から16日まで閉まる。"


@pytest.mark.parametrize("src, hyp", [
    ("These shoes were five thousand yen.", "その靴は五千円だった。"),  # already right, in kanji
    ("I bought two apples and a bottle of milk.", "リンゴを２つと牛乳を１本買った。"),  # 1本 is not the source's
    ("I waited for two hours.", "私は待った。"),  # dropped: nothing to pair, the check still flags it
    ("I have two dogs and three cats.", "犬が５匹いる。"),  # two missing, one extra: ambiguous
    ("It's 3:30.", "３匹です。"),  # a clock time against a count
    ("Turn left at the second light.", "２時に左に曲がって。"),  # an ordinal against a clock time: the check's
    ("The sale ends on the 3rd.", "セールは5時に終わる。"),  # a day against a clock time: the check's
    ("On May 1st, he went to the 5th floor.", "5月1日、彼は5th floorに行った。"),  # a floor, not a day of a range
    ("He was the first to come.", "彼が最初に来た。"),  # said with a word
    ("I like green tea.", "私は２時に緑茶が好きだ。"),  # no number in the source
    ("I was born in May.", "私は５月３日に生まれた。"),  # an extra day is the check's to flag, not ours
    ("I stayed for three months.", "私は５月に滞在した。"),  # a month is no count
    ("Three tickets cost 4,500 yen in total.", "3円で4500円かかった。"),  # a count said as a price: the check's
    ("We stayed three nights.", "私たちは3時に泊まった。"),  # a count said as an hour: the check's
    ("Three tickets cost 4,500 yen in total.", "4,500円で2万円で買った。"),  # a count against a price
    ("Take the third street on the right.", "右の通りを3分歩きなさい。"),  # an ordinal said as minutes: no 目
])
def test_what_does_not_pair_one_to_one_is_left_alone(src, hyp):
    assert from_source(src, hyp) == hyp


@pytest.mark.parametrize("number, wide, prefix, text", [
    (Number(5000, "x"), False, "", "5000"),
    (Number(11000, "x"), True, "", "１万１０００"),
    (Number(20000, "x"), False, "", "2万"),
    (Number(1.5, "x"), False, "", "1.5"),
    (Number(450, "x", "time"), False, "", "7時半"),
    (Number(525, "x", "time"), True, "", "８時４５分"),
    (Number(960, "x", "time"), False, "午後", "午後4時"),
])
def test_render_writes_japanese_forms(number, wide, prefix, text):
    assert render(number, wide, prefix) == text


def test_the_translator_rewrites_numbers_only_when_asked(tiny_run, monkeypatch):
    path = best_checkpoint(tiny_run)
    wrong = Output("その靴は５万円だった。", "その 靴 は ５ 万 円 だっ た 。", -1.0)
    monkeypatch.setattr(Translator, "output", lambda self, hyp, copies=None: wrong)
    src = ["These shoes were five thousand yen."]
    model = Translator.from_checkpoint(path)
    assert model.decode.numbers == "model" and model.translate(src)[0][0] == wrong
    fixed = Translator.from_checkpoint(path, numbers="source").translate(src)[0][0]
    assert fixed == replace(wrong, text="その靴は５０００円だった。", tokens="その 靴 は ５０００ 円 だっ た 。")


def test_the_cli_refuses_an_unknown_number_rule(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["translate", "--numbers", "words"])
    assert exit_.value.code == 2 and "--numbers" in capsys.readouterr().err


@pytest.mark.parametrize("token, form", [("45", "99"), ("1,500", "9,999"), ("10:30", "99:99"), ("3.5", "9.9"),
                                         ("thirty-two", "99"), ("five", "9"), ("tea", None), ("5th", None),
                                         ("one-way", None), ("$", None)])
def test_a_numeral_has_the_shape_of_its_digits(token, form):
    assert shape(token) == form


def test_a_number_the_vocabulary_lacks_goes_in_as_a_known_one_of_its_shape_not_in_the_sentence():
    known = shapes(["<unk>", "the", "10", "3", "50", "20", "1,000", "7:30", "10:00", "minutes", "60"])
    assert known == {"99": ["10", "50", "20", "60"], "9": ["3"], "9,999": ["1,000"], "9:99": ["7:30"],
                     "99:99": ["10:00"]}
    assert proxy("45", known, ["45", "minutes"]) == "10"  # the most frequent of its shape
    assert proxy("45", known, ["10", "and", "45", "minutes"]) == "50"  # 10 is the sentence's own: the next
    assert proxy("45", known, ["ten", "and", "45"]) == "50"  # so is ten
    assert proxy("thirty-two", known, ["thirty-two", "students"]) == "10"
    assert proxy("10:30", known, ["at", "10:30"]) == "10:00" and proxy("1,500", known, ["1,500"]) == "1,000"
    assert proxy("12,345,678", known, []) is None and proxy("minutes", known, []) is None


def test_the_translator_sends_an_unknown_number_as_a_known_one_only_with_numbers_from_the_source(tiny_run):
    path = best_checkpoint(tiny_run)
    model, source = Translator.from_checkpoint(path), Translator.from_checkpoint(path, numbers="source")
    vocab, line = model.src_vocab, "I have 45 cats."
    assert source.source_ids(line) == model.source_ids(line)  # the sample corpus has no numerals: <unk> stays
    unk = vocab.stoi["<unk>"]
    assert model.source_ids(line)[0][2] == unk
    known, k = source.src_vocab, len(vocab.itos) // 2  # the vocabulary of `source` given a "30" in place of a word
    del known.stoi[known.itos[k]]
    known.itos[k], known.stoi["30"] = "30", k
    source._numerals = None  # read from the vocabulary again
    assert source.source_ids(line)[0][2] == k and model.source_ids(line)[0][2] == unk
    assert source.source_ids("I have 456 cats.")[0][2] == unk  # no known numeral of that shape
