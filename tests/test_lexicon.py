"""The unknown-word dictionary (mt/lexicon.py): sense rule, names kept, JMdict lookups, errors."""

from __future__ import annotations

from importlib.util import find_spec
from types import SimpleNamespace as NS

import pytest

from mt import lexicon
from mt.errors import MTError

HAS_JMDICT = find_spec("jamdict") is not None and find_spec("jamdict_data") is not None


def _entry(kanji: str | None, kana: str, pri: list[str], senses: list[list[str]], kana_alone: bool = False,
           pos: str = "noun (common) (futsuumeishi)"):
    form = lambda text: NS(text=text, pri=pri)  # noqa: E731
    misc = ["word usually written using kana alone"] if kana_alone else []
    return NS(kanji_forms=[form(kanji)] if kanji else [], kana_forms=[form(kana)],
              senses=[NS(gloss=[NS(text=g) for g in s], misc=misc, pos=[pos]) for s in senses])


class Dictionary:
    def __init__(self, words: dict[str, str], capitals: dict[str, str] | None = None) -> None:
        self.words, self.capitals, self.asked = words, capitals or {}, []

    def lookup(self, word: str, capital: bool = False) -> str | None:
        self.asked.append((word, capital))
        return self.capitals.get(word) if capital else self.words.get(word)

    def names(self, written: str) -> tuple:  # JMnedict: no names here
        return ()


@pytest.mark.parametrize("word, expected", [("dogs", "dog"), ("cities", "city"), ("walked", "walk"),
                                            ("stopped", "stop"), ("running", "run"), ("baked", "bake"),
                                            ("boxes", "box"), ("got", "get"), ("went", "go"), ("brought", "bring"),
                                            ("children", "child"), ("written", "write")])
def test_lemmas_include_the_uninflected_form(word, expected):
    forms = lexicon.lemmas(word)
    assert word in forms and expected in forms


def test_an_irregular_form_is_looked_up_by_its_base_first_unless_it_is_a_word_of_its_own():
    assert lexicon.lemmas("went") == ["go", "went"] and lexicon.lemmas("stolen") == ["steal", "stolen"]
    assert lexicon.lemmas("left") == ["left", "leave"]  # the left hand as often as "she left"
    assert lexicon.lemmas("go") == ["go"]  # a base form is not an inflection


def test_the_base_of_an_irregular_verb_form_is_looked_up_as_a_verb():
    game = _entry("囲碁", "いご", ["ichi1"], [["go (board game)"]])
    verb = _entry("行く", "いく", ["ichi1"], [["to go", "to move"]])
    assert lexicon.choose("go", [game, verb], verb=True) == "行く"
    assert lexicon.choose("go", [game], verb=True) is None


@pytest.mark.parametrize("word, expected", [
    ("bigger", [("big", "より"), ("bigg", "より"), ("bigge", "より")]), ("happier", [("happy", "より")]),
    ("nicest", [("nic", "最も"), ("nice", "最も")]), ("worse", [("bad", "より")]), ("best", [("good", "最も")]),
    ("big", []), ("her", []),
])
def test_a_comparative_or_superlative_names_its_adjective_and_the_japanese_degree(word, expected):
    assert lexicon.degrees(word) == expected


def test_only_an_adjective_sense_answers_for_a_comparative():
    adjective, na = "adjective (keiyoushi)", "adjectival nouns or quasi-adjectives (keiyodoshi)"
    entries = [_entry("大幅", "おおはば", ["ichi1"], [["big"]], pos=na), _entry("大型", "おおがた", ["ichi1"], [["big"]]),
               _entry("大きい", "おおきい", [], [["big"]], pos=adjective)]
    assert lexicon.choose("big", entries) == "大幅"  # the frequent entry, for the word itself
    assert lexicon.choose("big", entries, adjective=adjective) == "大きい"
    assert lexicon.choose("big", entries[1:2], adjective=adjective) is None  # a noun is no adjective


def test_short_words_are_not_stripped():
    assert lexicon.lemmas("bus") == ["bus"] and lexicon.lemmas("red") == ["red"]


def test_a_first_sense_match_beats_a_frequent_entry_whose_later_sense_matches():
    later = _entry("回す", "まわす", ["ichi1", "news1"], [["to turn"], ["to bring"]])
    first = _entry("持って来る", "もってくる", [], [["to bring", "to fetch"]])
    assert lexicon.choose("bring", [later, first]) == "持って来る"


def test_the_more_frequent_entry_wins_then_the_earlier_gloss():
    rare = _entry("颶風", "ぐふう", [], [["typhoon"]])
    common = _entry("台風", "たいふう", ["ichi1", "news1"], [["hurricane", "typhoon"]])
    assert lexicon.choose("typhoon", [rare, common]) == "台風"
    late = _entry("乙", "おつ", [], [["rough", "messy"]])
    early = _entry("甲", "こう", [], [["messy"]])
    assert lexicon.choose("messy", [late, early]) == "甲"


def test_kana_alone_senses_give_the_kana_and_parentheses_are_ignored():
    uk = _entry("齎す", "もたらす", ["ichi1"], [["to bring (about)"]], kana_alone=True)
    assert lexicon.choose("bring", [uk]) == "もたらす"
    assert lexicon.choose("carry", [uk]) is None


def test_a_name_the_user_capitalised_is_kept_and_never_looked_up_as_a_common_word():
    d = Dictionary({"tanaka": "田中", "icy": "冷たい"})
    assert lexicon.fill("tanaka", "I met Mr. Tanaka yesterday.", d) == "Tanaka"
    assert d.asked == [("tanaka", True)]  # only among the words JMdict itself writes with a capital


def test_a_capitalised_word_jmdict_writes_with_its_capital_is_translated():
    d = Dictionary({"rose": "バラ"}, capitals={"mondays": "月曜日"})
    assert lexicon.fill("mondays", "The museum is closed on Mondays.", d) == "月曜日"
    assert lexicon.fill("rose", "I met Rose yesterday.", d) == "Rose"  # a name, not the flower


def test_a_lowercase_word_is_looked_up_and_a_missing_one_copied():
    d = Dictionary({"icy": "冷たい"})
    assert lexicon.fill("icy", "The road was icy this morning.", d) == "冷たい"
    assert lexicon.fill("zorb", "I tried a zorb.", d) == "zorb"


def test_a_capitalised_first_word_is_looked_up_and_kept_as_written_when_missing():
    d = Dictionary({"icy": "冷たい"})
    assert lexicon.fill("icy", "Icy roads are dangerous.", d) == "冷たい"
    assert lexicon.fill("zorbs", "Zorbs are fun.", d) == "Zorbs"


def test_without_a_dictionary_copies_keep_the_users_spelling():
    assert lexicon.fill("tanaka", "I met Mr. Tanaka.", None) == "Tanaka"
    assert lexicon.fill("icy", "It was icy.", None) == "icy"


def test_an_unknown_dictionary_name_is_one_clear_error():
    with pytest.raises(MTError, match="unknown dictionary 'wordnet'"):
        lexicon.load("wordnet")
    assert lexicon.load("none") is None


def test_jmdict_without_its_packages_says_how_to_install(monkeypatch):
    monkeypatch.setattr(lexicon, "find_spec", lambda name: None)
    monkeypatch.setitem(__import__("sys").modules, "jamdict", None)  # import jamdict → ImportError
    with pytest.raises(MTError, match=r"mt-enja\[dict\]"):
        lexicon.JMdict()


@pytest.mark.skipif(not HAS_JMDICT, reason="needs mt-enja[dict] (jamdict, jamdict-data)")
@pytest.mark.parametrize("word, japanese", [("umbrella", "傘"), ("typhoon", "台風"), ("dentist", "歯医者"),
                                            ("pilots", "パイロット"), ("icy", "冷たい"),
                                            ("natto", "納豆"),  # glossed "natto (fermented soybeans)"
                                            ("café", "喫茶店")])  # accents go before the lookup
def test_jmdict_lookups(word, japanese):
    assert lexicon.load("jmdict").lookup(word) == japanese


@pytest.mark.skipif(not HAS_JMDICT, reason="needs mt-enja[dict] (jamdict, jamdict-data)")
@pytest.mark.parametrize("word, japanese", [("worse", "より悪い"), ("bigger", "より大きい"), ("taller", "より高い"),
                                            ("cheaper", "より安い")])
def test_jmdict_writes_a_comparative_it_lacks_with_yori_and_its_adjective(word, japanese):
    assert lexicon.load("jmdict").lookup(word) == japanese


@pytest.mark.skipif(not HAS_JMDICT, reason="needs mt-enja[dict] (jamdict, jamdict-data)")
def test_jmdict_matches_glosses_written_with_a_capital():
    d = lexicon.load("jmdict")
    assert d.lookup("monday") in ("月曜", "月曜日") and d.lookup("mondays", capital=True) in ("月曜", "月曜日")
    assert d.lookup("umbrella", capital=True) is None  # JMdict writes it lowercase: no proper word


@pytest.mark.skipif(not HAS_JMDICT, reason="needs mt-enja[dict] (jamdict, jamdict-data)")
def test_jmdict_has_no_entry_for_nonsense_or_non_words():
    d = lexicon.load("jmdict")
    assert d.lookup("qzxvbnm") is None and d.lookup("5,000") is None


@pytest.mark.skipif(not HAS_JMDICT, reason="needs mt-enja[dict] (jamdict, jamdict-data)")
def test_a_hyphenated_word_is_also_looked_up_with_a_space():
    d = lexicon.load("jmdict")
    assert d.lookup("round-trip") is not None and d.lookup("round-trip") == d.lookup("round trip".replace(" ", "-"))


@pytest.mark.parametrize("word, expected", [("eighty-five", "85"), ("twelve", "12"), ("Twenty", "20"),
                                            ("three-hundred", "300"), ("tea", "辞書"), ("first", "辞書"),
                                            ("1,200", "1,200"), ("16th", "16th")])
def test_a_number_in_words_becomes_digits_before_any_lookup(word, expected):
    dictionary = NS(lookup=lambda word, capital=False: "辞書" if word.isalpha() else None,  # as JMdict: words only
                    names=lambda written: ())
    assert lexicon.fill(word, f"she is {word} now", dictionary) == expected
