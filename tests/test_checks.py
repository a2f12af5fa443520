"""Reference-free checks (mt/checks.py, mt/numbers.py, mt/lengths.py): every flag both ways, the number
normaliser on English and Japanese forms, the `short` calibration, `mt check` and its user errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mt import checks, lengths
from mt.checks import Checker, SourceVocab, check_line
from mt.cli import main
from mt.numbers import Number, english_numbers, japanese_numbers, same
from tests.conftest import train_tiny


def _time(h: int, m: int = 0) -> tuple[float, str]:
    return h * 60 + m, "time"


# text → the (value, kind) of each number found in it, in order
ENGLISH = [
    ("I paid five thousand yen.", [(5000, "number")]),
    ("twenty-one", [(21, "number")]),
    ("two hundred and fifty dollars", [(250, "number")]),
    ("a hundred people", [(100, "number")]),
    ("one million yen", [(1_000_000, "number")]),
    ("It is 7 billion.", [(7e9, "number")]),
    ("1,200", [(1200, "number")]),
    ("$5", [(5, "number")]),
    ("1.5 km", [(1.5, "number")]),
    ("the 3rd floor", [(3, "ordinal")]),
    ("the third floor", [(3, "ordinal")]),
    ("the twenty-first century", [(21, "ordinal")]),
    ("half past nine", [_time(9, 30)]),
    ("a quarter to six", [_time(5, 45)]),
    ("quarter past two", [_time(2, 15)]),
    ("ten minutes to seven", [_time(6, 50)]),
    ("It's ten to five now.", [_time(4, 50)]),  # a clock's words without "minutes"
    ("It's twenty past three.", [_time(3, 20)]),
    ("It is twenty-five to eight.", [_time(7, 35)]),
    ("from five to ten", [(5, "number"), (10, "number")]),  # a range
    ("I waited five to ten minutes.", [(5, "number"), (10, "number")]),
    ("7:30", [_time(7, 30)]),
    ("ten o'clock", [_time(10)]),
    ("ten o 'clock .", [_time(10)]),  # small_parallel_enja's tokens
    ("by 3 p.m.", [_time(15)]),
    ("at 3pm", [_time(15)]),
    ("class begins at eight-thirty .", [_time(8, 30)]),
    ("The train leaves at seven thirty.", [_time(7, 30)]),  # a clock said as two number words
    ("I get up at six fifteen.", [_time(6, 15)]),
    ("The bus comes at eight oh five.", [_time(8, 5)]),
    ("We met at seven thirty p.m.", [_time(19, 30)]),
    ("Seven thirty people came.", [(7, "number"), (30, "number")]),  # no clock meant
    ("at seven thirty-first", [(7, "number"), (31, "ordinal")]),
    ("I arrived at seven twenty people were waiting.", [(7, "number"), (20, "number")]),  # a word after: a count
    ("It costs about three fifty yen.", [(3, "number"), (50, "number")]),
    ("At seven thirty we left.", [_time(7, 30)]),
    ("i have one brother .", [(1, "number")]),
    ("the one i like , one of them , no one", []),  # "one" as a pronoun counts nothing
    ("wait a second", []),
    ("ten to one he will come .", []),  # an idiom, not two numbers
    ("five six", [(5, "number"), (6, "number")]),
    ("My birthday is on October 3rd.", [(10, "month"), (3, "day")]),
    ("I was born on 3 May 2001.", [(3, "day"), (5, "month"), (2001, "number")]),
    ("the 3rd of March", [(3, "day"), (3, "month")]),
    ("School starts in April.", [(4, "month")]),
    ("The sale ends on the 31st.", [(31, "day")]),
    ("Our shop is closed from August 13th to 16th.", [(8, "month"), (13, "day"), (16, "day")]),  # a range of days
    ("The sale runs from May 1st until the 7th.", [(5, "month"), (1, "day"), (7, "day")]),
    ("He came 2nd and she came 3rd.", [(2, "ordinal"), (3, "ordinal")]),  # ranks, no date
    ("On the 3rd of May I came 2nd and 3rd.", [(3, "day"), (5, "month"), (2, "ordinal"), (3, "ordinal")]),
    ("On May 1st he went to the 5th floor.", [(5, "month"), (1, "day"), (5, "ordinal")]),  # no range of days
    ("between May 1st and the 20th century", [(5, "month"), (1, "day"), (20, "ordinal")]),
    ("The sale ends on the twenty first.", [(21, "day")]),
    ("Our office is on the fifth floor.", [(5, "ordinal")]),  # on the, but not a date
    ("You may go. They march on. May I come in?", []),  # may and march that are no months
    ("this may be of use . you may or may not win . people above 18 may drive .", [(18, "number")]),
]
JAPANESE = [
    ("五千", [(5000, "number")]),
    ("５０００", [(5000, "number")]),
    ("5,000", [(5000, "number")]),
    ("5000", [(5000, "number")]),
    ("５千 円", [(5000, "number")]),
    ("二十一", [(21, "number")]),
    ("三百五十", [(350, "number")]),
    ("一万二千", [(12000, "number")]),
    ("１００ 万 円", [(1_000_000, "number")]),
    ("５ 万 円", [(50000, "number")]),
    ("１ 、０００ ドル", [(1000, "number")]),  # the corpus writes 、 between digit groups
    ("二〇二〇年", [(2020, "number")]),
    ("１．５キロ", [(1.5, "number")]),
    ("ふたり", [(2, "number")]),
    ("９時半", [_time(9, 30)]),
    ("８時１５分前", [_time(7, 45)]),
    ("７時３０分", [_time(7, 30)]),
    ("十時半の電車", [_time(10, 30)]),
    ("午後３時", [_time(15)]),
    ("7:30に", [_time(7, 30)]),
    ("2時間", [(2, "number")]),  # a duration, not a time
    ("１０月３日", [(10, "month"), (3, "number")]),
    ("十二月に", [(12, "month")]),
    ("３か月", [(3, "number")]),  # months counted, not a month
    ("月曜日", []),
    ("一緒に行こう", []),  # 一 that counts nothing
    ("一時的に", []),
]


@pytest.mark.parametrize("text, expected", ENGLISH)
def test_english_numbers(text, expected):
    assert [(n.value, n.kind) for n in english_numbers(text)] == expected


@pytest.mark.parametrize("text, expected", JAPANESE)
def test_japanese_numbers(text, expected):
    assert [(n.value, n.kind) for n in japanese_numbers(text)] == expected


def test_same_reads_times_on_a_twelve_hour_clock_and_hours_as_numbers():
    three_pm, three, eight = english_numbers("3 p.m.")[0], japanese_numbers("３時")[0], Number(8, "8")
    assert same(three_pm, three) and same(eight, japanese_numbers("８時")[0])
    assert not same(english_numbers("half past nine")[0], japanese_numbers("９時")[0])
    assert not same(Number(5000, "5000"), Number(500, "500"))


# -- each flag, both ways -----------------------------------------------------------------------

def _names(src: str, hyp: str, **kw) -> list[str]:
    return [f.name for f in check_line(src, hyp, **kw)]


@pytest.mark.parametrize("src, hyp, detail", [
    ("tom went to kyoto .", "tom は kyoto へ 行 っ た 。", "tom, kyoto"),  # lowercase copies of the source
    ("I saw a bird.", "私はbirdを見た。", "bird"),
    ("I saw a UFO.", "私は<unk>を見た。", "<unk>"),
    ("The café opens early.", "caféは早く開く。", "café"),  # an accented word is one word
])
def test_untranslated_flags_latin_words(src, hyp, detail):
    assert [str(f) for f in check_line(src, hyp)] == [f"untranslated ({detail})"]


@pytest.mark.parametrize("src, hyp", [
    ("She bought a CD.", "彼女はCDを買った。"),  # an all-caps acronym
    ("she bought a cd .", "彼女 は ｃｄ を 買 っ た 。"),  # small_parallel_enja lowercases them
    ("It is 3 km away.", "3kmです。"),  # a unit
    ("Tom went to Kyoto.", "Tomは京都へ行った。"),  # a name the user wrote with a capital
    ("I bought a T-shirt.", "Tシャツを買った。"),  # a single letter
    ("Send it to info@example.com.", "info@example.com に送って。"),
])
def test_untranslated_keeps_acronyms_units_and_the_users_names(src, hyp):
    assert "untranslated" not in _names(src, hyp)


def test_untranslated_allow_list(tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# kept in Latin\nMacBook\n", encoding="utf-8")
    words = checks.read_allow(allow)
    assert _names("my new macbook", "新しいmacbook", allow=words) == []
    assert _names("my new macbook", "新しいmacbook") == ["untranslated"]


@pytest.mark.parametrize("src, hyp, detail", [
    ("I paid five thousand yen.", "私は五百円払った。", "five thousand yen → 五百円"),
    ("I paid five thousand yen.", "私はお金を払った。", "five thousand yen → missing"),
    ("Let's meet at half past nine.", "９時に会いましょう。", "half past nine → 9時"),
    ("i get up at 7:30 .", "私 は ６ 時 半 に 起き る 。", "7:30 → 6時半"),
    ("He came third.", "彼は来た。", "third → missing"),
    ("My birthday is on October 3rd.", "私の誕生日は3月です。", "october → 3月, 3rd → missing"),
    ("The new project begins on April 1st.", "新しい計画は４月に始まる。", "1st → missing"),
    ("Turn left at the second traffic light.", "２時に信号を左に曲がって。", "second → 2時"),  # an ordinal is no hour
    ("The train leaves at seven thirty.", "電車は30時に出発する。", "seven thirty → 30時"),
    ("The sale ends on the 3rd.", "セールは3時に終わる。", "3rd → 3時"),  # a day is no hour either
    ("Three tickets cost 4,500 yen in total.", "3円で4500円かかった。", "three tickets → 3円"),  # a count is no price
    ("Turn left at the second traffic light.", "2つの信号を左に曲がって。", "second → 2つ"),  # nor an ordinal a count
    ("We stayed three nights.", "私たちは3時に泊まった。", "three nights → 3時"),  # nor a count an hour
    ("Three people came.", "3人目が来た。", "three people → 3人目"),
    ("Our school festival is from October 3rd to 5th.", "学校祭は5月5日から10月3日までだ。", "5月 added"),  # a month more
    ("The temperature will drop to five degrees tonight.", "気温は今晩5月には5度なるだろう。", "5月 added"),
    ("Take the third street on the right.", "右の通りを3分歩きなさい。", "third → 3分"),  # an ordinal is no duration
])
def test_number_flags_a_missing_or_different_number(src, hyp, detail):
    assert [str(f) for f in check_line(src, hyp)] == [f"number ({detail})"]


@pytest.mark.parametrize("hyp", ["私は五千円払った。", "私は５０００円払った。", "私は5,000円払った。", "私は5000円払った。",
                                 "私 は ５千 円 払 っ た 。"])
def test_number_accepts_every_form_of_five_thousand(hyp):
    assert _names("I paid five thousand yen.", hyp) == []


@pytest.mark.parametrize("src, hyp", [
    ("Let's meet at half past nine.", "９時半に会いましょう。"),
    ("it 's quarter to eight now .", "今 、 ８ 時 １５ 分 前 で す 。"),  # small_parallel_enja's own translation
    ("the job must be finished by 3 p.m.", "その 仕事 は ３ 時 まで に 終え な けれ ば な ら な い 。"),
    ("the train was due at 6 .", "列車 は ６ 時 到着 の はず だっ た 。"),
    ("I came here for the first time.", "初めてここに来た。"),
    ("There are no numbers here.", "ここに数はない。"),
    ("My birthday is on October 3rd.", "私の誕生日は十月三日です。"),
    ("I have lived here for three months.", "私はここに３か月住んでいる。"),
    ("Turn left at the second traffic light.", "２つ目の信号を左に曲がって。"),
    ("The train leaves at seven thirty.", "電車は７時３０分に出発する。"),
    ("Three tickets cost 4,500 yen in total.", "チケット3枚で4,500円かかった。"),  # a count with its counter
    ("It cost three hundred.", "300円でした。"),  # a bare number may be a price
    ("I paid three hundred for two books.", "2冊の本に300円払った。"),
    ("This is my third visit.", "これは私の3回目の訪問です。"),
    ("The third chapter is hard.", "第3章は難しい。"),
    ("We meet at nine tomorrow.", "明日9時に会う。"),  # a word after it that is no counted thing
    ("The bus at seven leaves from platform 2.", "７時のバスは２番線から出る。"),  # after *at*, any word
    ("Dinner at seven sounds good.", "７時の夕食はいいね。"),
    ("I paid twenty bucks for it.", "20ドル払った。"),
    ("I waited for five minutes.", "5分待った。"),
    ("we have english third period .", "英語 は ３ 時間 目 だ 。"),  # 時間目: a class period, an ordinal
])
def test_number_accepts_the_same_number_said_otherwise(src, hyp):
    assert "number" not in _names(src, hyp)


@pytest.mark.parametrize("src, hyp, found", [
    ("I could not sleep because of the noise.", "騒音のせいで眠れなかったので、私は眠れなかった。", "眠れなかった"),
    ("I like him.", "私は私は私は彼が好きです。", "私は私は私は"),
    ("she gave it to him .", "彼女 は 彼 に 彼 に 彼 に それ を あげ た 。", "彼に彼に彼に"),
    ("The sale ends on the 31st.", "31日の31日は31日についた。", "31日"),  # three times, apart
    ("This tea is too hot to drink right now.", "このお茶は今すぐに飲みすぎて飲みすぎる。", "飲みすぎ"),  # again at once
    ("jim is not a lawyer but a doctor .", "ジム は 医者 で は な く て 医者 で は な い 。", "医者ではな"),
])
def test_repeat_flags_a_repeated_stretch(src, hyp, found):
    assert [str(f) for f in check_line(src, hyp)] == [f"repeat ({found})"]


@pytest.mark.parametrize("src, hyp", [
    ("her sons as well as she were happy .", "彼女 のみ な ら ず 彼女 の 息子 達 も 幸せ だっ た 。"),  # human, short repeat
    ("he is tired , and so am i.", "彼 は 疲れ て い る し 、 私 も 疲れ て い る 。"),
    ("we talked about various things .", "私たちはいろいろなことを話した。"),  # reduplication
    ("no , no , no !", "違 う 、 違 う 、 違 う ！"),  # the source repeats too
    ("get back , get back .", "戻 っ て お い で 戻 っ て お い で よ 。"),
    ("My mother, my father and my sister came.", "私の母と私の父と私の妹が来た。"),  # 私の twice, a stretch of 3 never thrice
    ("I went to Tokyo and then to Osaka.", "私は東京に行き、それから大阪に行った。"),  # に行 again, but short and far
    ("Tickets are 1,000, 2,000 and 3,000 yen.", "チケットは1,000円、2,000円、3,000円です。"),  # numbers count whole
    ("He came to Japan in 2001, 2003 and 2005.", "彼は2001年、2003年、2005年に日本に来た。"),
    ("Rooms 101, 102 and 103 are free.", "101号室、102号室、103号室が空いている。"),
    ("It costs one billion yen.", "1,000,000,000円かかる。"),
])
def test_repeat_leaves_ordinary_japanese_and_repeated_sources_alone(src, hyp):
    assert "repeat" not in _names(src, hyp)


LENGTH = lengths.LengthModel(slope=1.0, intercept=7.0, threshold=0.57, percentile=2.5, pairs=100, corpus="test")


def test_short_flags_a_likely_omission_and_states_the_ratio():
    src = "She bought a new dress yesterday and went to the party with her friends."  # 14 words: 21 chars predicted
    flags = check_line(src, "彼女は服を買った。", length=LENGTH)
    assert [f.name for f in flags] == ["short"] and flags[0].detail == f"{8 / 21:.2f} of predicted"
    assert _names(src, "", length=LENGTH) == ["short"]
    assert _names(src, "彼女は昨日新しいドレスを買って、友達とパーティーに行った。", length=LENGTH) == []
    assert _names(src, "彼女は服を買った。") == []  # no calibration: not checked


def test_length_counts_ignore_tokenization():
    assert lengths.ja_chars("私 は 学生 で す 。") == lengths.ja_chars("私は学生です。") == 6
    assert lengths.en_words("i 'm a student .") == lengths.en_words("I'm a student.") == 4


def test_calibration_fits_the_corpus_and_is_cached(tmp_path):
    en = [" ".join(["word"] * n) for n in range(1, 11)] * 10
    ja = ["あ" * (2 * n + 3) for n in range(1, 11)] * 10
    model = lengths.fit(en, ja, "synthetic")
    assert abs(model.slope - 2) < 1e-9 and abs(model.intercept - 3) < 1e-9 and model.threshold == pytest.approx(1)
    assert "calibrated on synthetic train, 100 pairs, 2.5th percentile" in model.describe()
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "train.en").write_text("\n".join(en) + "\n", encoding="utf-8")
    (folder / "train.ja").write_text("\n".join(ja) + "\n", encoding="utf-8")
    assert lengths.calibrated(folder, "synthetic") == model
    (folder / "train.ja").write_text("\n".join("あ" * (4 * n) for n in range(1, 11)) * 10 + "\n", encoding="utf-8")
    assert lengths.calibrated(folder, "synthetic").slope != model.slope  # a changed corpus is fitted again


def test_unknown_flags_words_outside_the_vocabulary():
    vocab = SourceVocab(lambda s: s.lower().split(), {"i", "like", "tea"})
    assert [str(f) for f in check_line("I like matcha", "私は抹茶が好き", vocab=vocab)] == ["unknown (matcha)"]
    assert _names("I like tea", "私はお茶が好き", vocab=vocab) == []
    assert "unknown" not in _names("I like matcha", "私は抹茶が好き")  # no model: not checked


def test_an_empty_source_has_no_flags_and_totals_count_lines():
    checker = Checker(LENGTH)
    sources = ["", "I paid 5 dollars.", "I paid 5 dollars."]
    flags = checks.check_lines(sources, ["", "払った。", "私は５ドルを払いました。"], checker)
    assert flags[0] == [] and checks.totals(flags, checker.checked()) == {
        "untranslated": 0, "number": 1, "repeat": 0, "short": 1}


# -- mt check -----------------------------------------------------------------------------------

def _files(tmp_path, src: list[str], hyp: list[str]):
    s, h = tmp_path / "src.en", tmp_path / "hyp.ja"
    s.write_text("".join(x + "\n" for x in src), encoding="utf-8")
    h.write_text("".join(x + "\n" for x in hyp), encoding="utf-8")
    return s, h


def test_mt_check_prints_flags_and_writes_json(tmp_path, capsys):
    src, hyp = _files(tmp_path, ["I paid five thousand yen.", "I like tea.", "tom went to kyoto ."],
                      ["私は五百円を払いました。", "私はお茶が好きです。", "tom は kyoto へ 行 っ た 。"])
    out_json = tmp_path / "flags.json"
    assert main(["check", "--src", str(src), "--hyp", str(hyp), "--json", str(out_json), "--corpus", "sample"]) == 0
    out = capsys.readouterr().out
    assert "line 1: number (five thousand yen → 五百円)" in out and "line 3: untranslated (tom, kyoto)" in out
    assert "line 2" not in out and "calibrated on sample train" in out and "unknown: skipped" in out
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert [x["line"] for x in report["lines"]] == [1, 2, 3]
    assert report["lines"][0]["flags"] == ["number"] and report["lines"][1]["flags"] == []
    assert report["totals"] == {"untranslated": 1, "number": 1, "repeat": 0, "short": 0}
    assert set(report["totals"]) == set(checks.FLAGS) - set(report["skipped"])


def test_mt_check_bad_input_is_one_line(tmp_path, capsys):
    src, hyp = _files(tmp_path, ["one", "two", "three"], ["一", "二"])
    assert main(["check", "--src", str(src), "--hyp", str(hyp)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{src} has 3 lines, {hyp} has 2" in err
    assert main(["check", "--src", str(tmp_path / "missing.en"), "--hyp", str(hyp)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "file not found" in err and "missing.en" in err
    src, hyp = _files(tmp_path, ["one"], ["一"])
    assert main(["check", "--src", str(src), "--hyp", str(hyp), "--allow", str(tmp_path / "allow.txt")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_mt_check_with_a_model_flags_unknown_words(model_run, tmp_path, capsys):
    src, hyp = _files(tmp_path, ["I like zyxwvut."], ["私はお茶が好きです。"])
    assert main(["check", "--run", str(model_run), "--src", str(src), "--hyp", str(hyp)]) == 0
    out = capsys.readouterr().out
    assert "unknown (zyxwvut)" in out and "calibrated on sample train" in out and "unknown: skipped" not in out
    assert "dropped: skipped (not asked for (--dropped))" in out


# -- the checks in translate, evaluate, compare ------------------------------------------------

@pytest.fixture(scope="module")
def model_run() -> Path:
    return train_tiny("transformer", "check-tf", epochs=2)


def _stdin(monkeypatch, text: str) -> None:
    class Stdin:
        buffer = io.BytesIO(text.encode())

    monkeypatch.setattr("sys.stdin", Stdin())


def test_translate_check_flags_on_stderr_and_leaves_stdout_alone(model_run, monkeypatch, capsys):
    lines = "I am a student.\n\nI like zyxwvut.\n"
    _stdin(monkeypatch, lines)
    assert main(["translate", "--run", str(model_run)]) == 0
    plain = capsys.readouterr()
    _stdin(monkeypatch, lines)
    assert main(["translate", "--run", str(model_run), "--check"]) == 0
    checked = capsys.readouterr()
    assert checked.out == plain.out and len(checked.out.splitlines()) == 3
    assert "mt: line 3: " in checked.err and "unknown (zyxwvut)" in checked.err and "line 2:" not in checked.err
    assert "calibrated on sample train" in checked.err


def test_evaluate_and_compare_count_each_flag(model_run, tmp_path, capsys):
    assert main(["evaluate", "--run", str(model_run), "--split", "test"]) == 0
    printed = capsys.readouterr().out
    scores = json.loads((model_run / "eval-test.json").read_text(encoding="utf-8"))
    assert set(scores["checks"]) == set(checks.FLAGS) - {"readback"}  # no reverse model given
    assert f"checks (lines)       untranslated {scores['checks']['untranslated']}, number" in printed
    flags_json = tmp_path / "flags.json"
    assert main(["check", "--run", str(model_run), "--src", scores["src"], "--hyp", str(model_run / "hyps-test.txt"),
                 "--dropped", "--json", str(flags_json)]) == 0
    assert json.loads(flags_json.read_text(encoding="utf-8"))["totals"] == scores["checks"]  # one count everywhere
    capsys.readouterr()
    assert main(["compare", str(model_run), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checks"]["rows"] == [{"system": model_run.name, **scores["checks"]}]
    hyps = model_run / "hyps-test.txt"
    assert main(["compare", "--ref", scores["ref"], "--hyps", str(hyps), str(hyps), "--src", scores["src"]]) == 0
    table = capsys.readouterr().out.split("checks: lines flagged")[1].splitlines()
    assert table[1].split() == ["system", *checks.FLAGS]
    assert table[3].split()[-1] == "–"  # hypothesis files: no model, so no `unknown`
