"""Names (mt/names.py): which words are names, masking, rendering from JMnedict, and the re-decode rule."""

from __future__ import annotations

from dataclasses import replace

from mt import lexicon, names
from mt.vocab import UNK


def test_a_name_is_capitalised_inside_the_sentence_and_not_a_day_or_month():
    assert names.capitalised("tanaka", "I met Mr. Tanaka yesterday.") == "Tanaka"
    assert names.capitalised("tanaka", "Tanaka met me.") is None  # a first word: could be any word
    assert names.capitalised("i", "Yesterday I met him.") is None
    assert names.capitalised("friday", "See you on Friday.") is None
    assert names.capitalised("icy", "The road was icy.") is None
    assert names.capitalised("anna", "Annabel phoned Anna.") == "Anna"  # the word, not a prefix of the first one
    assert names.capitalised("sadly", "I went home. Sadly, it rained.") is None  # a later sentence's first word


def test_a_first_word_is_a_name_only_where_the_dictionary_says_so():
    assert names.name_in("emily", "Emily lives in London.", lambda w: w == "Emily") == "Emily"
    assert names.name_in("icy", "Icy roads are dangerous.", lambda w: w == "Emily") is None
    assert names.name_in("emily", "Emily lives in London.") is None  # no dictionary: not a name


def test_mask_replaces_rare_names_only():
    tokens = ["i", "met", "mr.", "tanaka", "in", "tokyo", "."]
    raw = "I met Mr. Tanaka in Tokyo."
    ids = [5, 40, 2972, 3608, 13, 328, 4]
    assert names.mask(tokens, ids, raw) == [5, 40, 2972, UNK, 13, 328, 4]  # Tokyo is frequent: the model's
    assert names.mask(tokens, ids, raw, frequent=10_000) == ids
    lower = "i met mr. tanaka in tokyo."  # lowercase text has no names
    assert names.mask(tokens, ids, lower) == ids


def test_titles_the_vocabulary_lacks_become_one_it_has():
    known = {"mr.", "doctor", "brown"}.__contains__
    assert names.titles(["mrs.", "brown"], known) == ["mr.", "brown"]
    assert names.titles(["dr.", "sato"], known) == ["doctor", "sato"]
    assert names.titles(["ms."], {"ms.", "mr."}.__contains__) == ["ms."]  # known: kept
    assert names.titles(["i", "miss", "you"], {"mr."}.__contains__) == ["i", "miss", "you"]  # a verb, not a title


def test_katakana_and_long_vowel_spellings():
    assert names.katakana("たなか") == "タナカ"
    assert names.katakana("田中・ゆき") == "田中・ユキ"
    assert names.spellings("Kato") == ["Kato", "Katou", "Katō"]
    assert names.spellings("Emily") == ["Emily"]


def test_render_rules():
    rank = {"田中": 4876, "雪": 900, "大阪": 919}.get
    assert names.render([("札幌", "さっぽろ", False)], rank) == "札幌"  # one form
    assert names.render([], rank) is None
    maria = [(None, "まりあ", True), ("真理", "まりあ", True), (None, "マリア", True), (None, "マリーア", False)]
    assert names.render(maria, {"真理": 5}.get) == "マリア"  # a person's katakana form before a vocabulary word
    tanaka = [(None, "タナカ", False), ("多中", "たなか", True), ("田中", "たなか", True)]
    assert names.render(tanaka, rank) == "田中"  # the corpus's form of the most common reading
    yuki = [("雪", "ゆき", True), ("由紀", "ゆき", True), ("幸", "さち", True)]
    assert names.render(yuki, rank) == "ユキ"  # one-character forms are words first: the reading
    kimura = [("嘉村", "きむら", True), ("喜村", "きむら", True)]
    assert names.render(kimura, rank) == "キムラ"
    assert names.forms(kimura, "Kimura") == {"Kimura", "嘉村", "喜村", "きむら", "キムラ"}
    ai = [("愛", "あい", True), ("藍", "あい", True), ("会", "かい", False)]
    assert names.forms(ai, "Ai") == {"Ai", "あい", "アイ", "かい", "カイ"}  # one-character forms are words too
    assert names.forms([("愛", "あい", True)], "Ai") == {"Ai", "愛", "あい", "アイ"}  # ... unless the only form


class Dictionary:
    def __init__(self, words: dict[str, str], people: dict[str, list]) -> None:
        self.words, self.people = words, people

    def lookup(self, word: str, capital: bool = False) -> str | None:
        return None if capital else self.words.get(word)  # JMdict writes none of these words with a capital

    def names(self, written: str) -> tuple:
        return tuple(self.people.get(written, []))


def test_fill_writes_a_copied_name_as_jmnedict_has_it():
    d = Dictionary({"icy": "冷たい"}, {"Tanaka": [("田中", "たなか", True), ("多中", "たなか", True)],
                                       "Yuki": [(None, "ユキ", True), ("由紀", "ゆき", True)]})
    rank = {"田中": 10}.get
    assert lexicon.fill("tanaka", "I met Mr. Tanaka yesterday.", d, rank) == "田中"
    assert lexicon.fill("zorb", "I met Mr. Zorb.", d, rank) == "Zorb"  # JMnedict lacks it: as written
    assert lexicon.fill("yuki", "Yuki is my friend.", d, rank) == "ユキ"  # a first word JMdict lacks
    assert lexicon.fill("icy", "Icy roads are dangerous.", d, rank) == "冷たい"
    assert lexicon.fill("tanaka", "I met Mr. Tanaka.", None) == "Tanaka"


def test_names_source_decodes_again_only_the_sentences_that_lost_a_name(tiny_run, monkeypatch):
    import functools

    import mt.translate
    from mt.experiments import best_checkpoint
    from mt.translate import Output, Translator

    tr = Translator.from_checkpoint(best_checkpoint(tiny_run), names="source")
    assert tr.decode.names == "source"
    # the tiny run's vocabulary has no rare words: every word counts as rare here
    monkeypatch.setattr(mt.translate, "mask", functools.partial(names.mask, frequent=4))
    kept, lost = [w.capitalize() for w in tr.src_vocab.itos[4:] if w.isalpha() and w != "i"][:2]
    calls = []

    def fake(lines, beam, nbest, batch_size, masked):  # the first pass loses `lost`; the masked one copies it
        calls.append((list(lines), masked))
        return [[Output(f"{kept}は来た。" if kept in line else f"{lost}が来た。" if masked else "来た。", "", 0.0)]
                for line in lines]

    monkeypatch.setattr(tr, "_translate", fake)
    lines = [f"I saw {kept} today.", f"I saw {lost} today.", "it is fine ."]
    assert [o[0].text for o in tr.translate(lines)] == [f"{kept}は来た。", f"{lost}が来た。", "来た。"]
    assert calls == [(lines, False), ([lines[1]], True)]  # the second lost its name: again, masked
    monkeypatch.setattr(tr, "_translate", lambda lines, *a, **k: [[Output("来た。", "", 0.0)] for _ in lines])
    assert tr.translate([lines[1]])[0][0].text == "来た。"  # lost again: the first translation stays
    tr.decode = replace(tr.decode, replace_unk=False)  # nothing would copy the masked name back: no second pass
    monkeypatch.setattr(tr, "_translate", fake)
    calls.clear()
    tr.translate(lines)
    assert calls == [(lines, False)]
    tr.decode = replace(tr.decode, replace_unk=True)
    calls.clear()
    tr.decode = replace(tr.decode, names="model")
    tr.translate(lines)
    assert calls == [(lines, False)]


def test_masked_source_ids_carry_rare_names_as_unk(tiny_run, monkeypatch):
    import functools

    import mt.translate
    from mt.experiments import best_checkpoint
    from mt.translate import Translator

    tr = Translator.from_checkpoint(best_checkpoint(tiny_run))
    monkeypatch.setattr(mt.translate, "mask", functools.partial(names.mask, frequent=10))  # the tiny vocabulary
    word = next(w for w in tr.src_vocab.itos[4:] if w.isalpha() and w != "i")
    raw = f"I saw {word.capitalize()} there."
    plain, _ = tr.source_ids(raw)
    masked, _ = tr.source_ids(raw, masked=True)
    k = tr.source_tokens(raw).index(word)
    assert plain[k] != UNK and masked[k] == (UNK if plain[k] >= 10 else plain[k])
    rare = next(w for w in tr.src_vocab.itos[10:] if w.isalpha())
    raw = f"I saw {rare.capitalize()} there."
    k = tr.source_tokens(raw).index(rare)
    assert tr.source_ids(raw, masked=True)[0][k] == UNK and tr.source_ids(raw)[0][k] != UNK
    assert [a for i, a in enumerate(plain) if i != k] == [b for i, b in enumerate(masked) if i != k]
