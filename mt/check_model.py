"""A model's side of the checks (mt/checks.py): its source vocabulary for `unknown`, its corpus for `short`."""

from __future__ import annotations

import json
from pathlib import Path

from mt import checkpoint as ckpt
from mt import config, experiments
from mt.checks import Checker, SourceVocab, checker
from mt.errors import MTError
from mt.text import Pipeline
from mt.translate import source_tokens
from mt.vocab import Vocab


def model_vocab(src_pipe: Pipeline, src_vocab: Vocab) -> SourceVocab:
    """A translator's source side (mt.translate or the CTranslate2 one) as the `unknown` check reads it."""
    return SourceVocab(lambda text: source_tokens(text, src_pipe, src_vocab), src_vocab.stoi)


def model_meta(path: Path) -> dict:
    """A checkpoint's metadata (config, vocabularies, sentencepiece models): the one place checks read a model."""
    return ckpt.read_meta(path)


def meta_vocab(meta: dict) -> SourceVocab:
    cfg = config.build(meta["config"])
    return model_vocab(Pipeline(cfg.data.src_tokenizer, ckpt.sp_from_json(meta.get("src_sp"))),
                       Vocab.from_json(meta["src_vocab"]))


def for_model(path: Path, vocab: SourceVocab | None = None, allow: frozenset[str] = frozenset(),
              corpus: str | None = None) -> Checker:
    """A checkpoint's Checker: its vocabulary (or the loaded translator's, `vocab`), calibrated on its corpus."""
    meta = model_meta(path)
    return checker(corpus or config.build(meta["config"]).data.corpus, vocab or meta_vocab(meta), allow,
                   explicit=corpus is not None)


def for_translator(translator, path: Path | None = None) -> Checker:
    """The checks of a loaded translator's outputs (torch or CTranslate2): its vocabulary, calibrated on the
    corpus of its checkpoint `path` (without one: small_parallel_enja, where at hand)."""
    vocab = model_vocab(translator.src_pipe, translator.src_vocab)
    return for_model(path, vocab) if path else checker(vocab=vocab)


def for_run(run: Path) -> Checker:
    """A run folder's Checker (an ensemble's: its first member's); without a checkpoint, no `unknown`."""
    try:
        if (run / "ensemble.json").exists():
            path = Path(json.loads((run / "ensemble.json").read_text(encoding="utf-8"))["members"][0])
        else:
            path = experiments.best_checkpoint(run)
    except MTError:
        return checker()
    return for_model(path) if path.exists() else checker()
