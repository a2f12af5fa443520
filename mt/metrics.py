"""Japanese-correct sacrebleu scores, each with its signature.

- corpus-token BLEU: tokenize='none' on the corpus's own word segmentation (comparable with
  published small_parallel_enja numbers);
- ja-mecab BLEU: detokenized text re-segmented with MeCab-IPADIC (janome, which uses the same
  dictionary, stands in when mecab-python3/ipadic are absent);
- chrF on detokenized text.
sacrebleu's default '13a' tokenizer is never used: it sees a Japanese sentence as one token.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from sacrebleu.metrics import BLEU, CHRF

from mt.text import detokenize_en, detokenize_ja, normalize_en, segment_ja


@lru_cache(maxsize=1)
def mecab_available() -> bool:
    try:
        BLEU(tokenize="ja-mecab").corpus_score(["テスト"], [["テスト"]])
        return True
    except Exception:  # sacrebleu raises different errors when MeCab or its dictionary is missing
        return False


def corpus_token_bleu(hyps: list[str], refs: list[str]) -> tuple[float, str]:
    """BLEU on space-separated corpus tokens."""
    metric = BLEU(tokenize="none")
    return metric.corpus_score(hyps, [refs]).score, str(metric.get_signature())


def ja_bleu_metric() -> tuple[BLEU, Callable[[list[str]], list[str]]]:
    """The ja-mecab BLEU metric and what its inputs go through first: sacrebleu's own ja-mecab and nothing,
    or (MeCab absent) BLEU on words and janome's segmentation, with the same IPADIC dictionary."""
    if mecab_available():
        return BLEU(tokenize="ja-mecab"), list
    return BLEU(tokenize="none"), lambda lines: [" ".join(segment_ja(x)) for x in lines]


def ja_signature(metric: BLEU) -> str:
    """The signature of a `ja_bleu_metric` that has scored: janome's segmentation says so (not tok:none)."""
    return str(metric.get_signature()).replace("tok:none", "tok:ja-janome")


def ja_bleu(hyps: list[str], refs: list[str]) -> tuple[float, str]:
    """BLEU on detokenized Japanese segmented as sacrebleu's ja-mecab does."""
    metric, segment = ja_bleu_metric()
    return metric.corpus_score(segment(hyps), [segment(refs)]).score, ja_signature(metric)


def en_bleu(hyps: list[str], refs: list[str]) -> tuple[float, str]:
    """BLEU on English, both sides through the normalizer first (lowercased, clitics split: idempotent on
    small_parallel_enja's English, so raw and pre-tokenized references score alike); the signature says tok:mt-en."""
    metric = BLEU(tokenize="none")
    score = metric.corpus_score([normalize_en(h) for h in hyps], [[normalize_en(r) for r in refs]]).score
    return score, str(metric.get_signature()).replace("tok:none", "tok:mt-en")


def chrf(hyps: list[str], refs: list[str]) -> tuple[float, str]:
    metric = CHRF()
    return metric.corpus_score(hyps, [refs]).score, str(metric.get_signature())


def detokenized(lines: list[str], tokenized: bool, lang: str = "ja") -> list[str]:
    """Lines as BLEU on text and chrF see them: corpus tokens (`tokenized`) joined back into running text."""
    if not tokenized:
        return lines
    return [(detokenize_ja if lang == "ja" else detokenize_en)(line.split()) for line in lines]


def score_all(hyps_detok: list[str], refs_detok: list[str],
              hyps_tok: list[str] | None = None, refs_tok: list[str] | None = None, ja: bool = True,
              lang: str = "ja") -> dict:
    """Every score that applies, with signatures: corpus-token BLEU only for tokenized refs, ja BLEU unless
    `ja` is False (then only where there is no corpus-token BLEU), chrF. English (`lang` "en", a ja-en model):
    BLEU on normalized English tokens (en_bleu) and chrF."""
    out = {}
    if lang == "en":
        out["bleu_en"], out["bleu_en_signature"] = en_bleu(hyps_detok, refs_detok)
        out["chrf"], out["chrf_signature"] = chrf(hyps_detok, refs_detok)
        return out
    tokenized = hyps_tok is not None and refs_tok is not None
    if tokenized:
        out["bleu_tok"], out["bleu_tok_signature"] = corpus_token_bleu(hyps_tok, refs_tok)
    if ja or not tokenized:
        out["bleu_ja"], out["bleu_ja_signature"] = ja_bleu(hyps_detok, refs_detok)
    out["chrf"], out["chrf_signature"] = chrf(hyps_detok, refs_detok)
    return out
