"""A model's side of the checks (mt/checks.py): its source vocabulary for `unknown`, its corpus for `short`, the
model itself for `dropped` (mt/dropped.py, asked for with `dropped=True`: it costs a forced pass per content word)."""

from __future__ import annotations

import json
from dataclasses import replace
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


def english_to_japanese(cfg: config.Config, path: Path | None = None) -> None:
    """The checks read English sources and Japanese translations: one clear error for a ja-en model."""
    if cfg.data.direction != "en-ja":
        raise MTError(f"{path or 'the model'} translates {cfg.data.direction}: the checks read English sources and "
                      f"Japanese translations (an en-ja model's)")


def meta_vocab(meta: dict) -> SourceVocab:
    cfg = config.build(meta["config"])
    return model_vocab(Pipeline(cfg.data.src_tokenizer, ckpt.sp_from_json(meta.get("src_sp"))),
                       Vocab.from_json(meta["src_vocab"]))


def for_model(path: Path, vocab: SourceVocab | None = None, allow: frozenset[str] = frozenset(),
              corpus: str | None = None, dropped: bool = False, device: str = "cpu") -> Checker:
    """A checkpoint's Checker: its vocabulary (or the loaded translator's, `vocab`), calibrated on its corpus;
    `dropped`: the model loaded to read the pairs."""
    meta = model_meta(path)
    english_to_japanese(config.build(meta["config"]), path)
    checks = checker(corpus or config.build(meta["config"]).data.corpus, vocab or meta_vocab(meta), allow,
                     explicit=corpus is not None)
    if not dropped:
        return checks
    from mt.translate import Translator

    return with_dropped(checks, Translator.from_checkpoint(path, device, dictionary="none"))


def with_dropped(checks: Checker, translator) -> Checker:
    """`checks` with `dropped` read by a loaded PyTorch translator's model, or skipped with the reason."""
    from mt.dropped import Erasure

    torch_engine = hasattr(translator, "model")  # the CTranslate2 translator holds no PyTorch model
    erasure = Erasure.for_translator(translator) if torch_engine else None
    skipped = {k: v for k, v in checks.skipped.items() if k != "dropped"}
    if erasure is None:
        skipped["dropped"] = ("the model reads corpus tokens, not raw Japanese; check with a raw-text model "
                              "(mt check --run RUN --dropped)" if torch_engine
                              else "the CTranslate2 engine gives no forced decoding")
    return replace(checks, erasure=erasure, skipped=skipped)


def with_readback(checks: Checker, reverse) -> Checker:
    """`checks` with `readback` read by a loaded ja→en model (mt.reverse.Reverse)."""
    skipped = {k: v for k, v in checks.skipped.items() if k != "readback"}
    return replace(checks, reader=reverse.read_back, skipped=skipped)


def for_translator(translator, path: Path | None = None, dropped: bool = False) -> Checker:
    """The checks of a loaded translator's outputs (torch or CTranslate2): its vocabulary, calibrated on the
    corpus of its checkpoint `path` (without one: small_parallel_enja, where at hand); `dropped`: read by its
    model too; `readback` where the translator reranks with a reverse model (decode.reverse), by that model."""
    if getattr(translator, "lang", "ja") != "ja":
        raise MTError(f"{path or 'the model'} translates into English: the checks read English sources and Japanese "
                      f"translations (an en-ja model's)")
    vocab = model_vocab(translator.src_pipe, translator.src_vocab)
    checks = for_model(path, vocab) if path else checker(vocab=vocab)
    checks = with_dropped(checks, translator) if dropped else checks
    reverse = translator.reverse() if hasattr(translator, "reverse") else None
    return with_readback(checks, reverse) if reverse else checks


def for_run(run: Path, dropped: bool = False) -> Checker:
    """A run folder's Checker (an ensemble's: its first member's); without a checkpoint, no `unknown` (nor
    `dropped`)."""
    try:
        if (run / "ensemble.json").exists():
            path = Path(json.loads((run / "ensemble.json").read_text(encoding="utf-8"))["members"][0])
        else:
            path = experiments.best_checkpoint(run)
    except MTError:
        return checker()
    return for_model(path, dropped=dropped) if path.exists() else checker()
