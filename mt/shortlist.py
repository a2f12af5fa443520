"""A target-vocabulary shortlist for decoding: Marian's lexical shortlist, CTranslate2's vocabulary map.

At beam 5 the output layer (the last projection and log-softmax over all V target words) is the largest single
cost of a decoding step (docs/speed.md). With a shortlist a batch decodes over L ≪ V words: the `first` most
frequent target words of the training data, and for each word of the batch's sources its `best` likeliest
translations, ranked by p(t | s) = c(s, t) / c(s), the share of the training pairs holding source word s whose
target holds t. (The Dice coefficient 2·c(s,t) / (c(s) + c(t)) ranks rarer words first: on the everyday run's dev
set it needed 1.6–2× the words per batch for as many sentences decoded exactly as over the whole vocabulary;
docs/speed.md.)
The softmax runs over those L words, as in Marian and CTranslate2, so scores are renormalised and a translation can
differ from the whole vocabulary's; `mt bench translate --shortlist` measures speed and BLEU side by side.

The table is built from a run's training pairs when the run starts (`mt shortlist RUN` for a run trained before),
saved beside its checkpoints as shortlist.safetensors and checked against the checkpoint's vocabularies when loaded.
Search never learns of it: `restricted` hands it a model whose token ids are positions in the shortlist (`Restricted`),
and `widen` maps the hypotheses back. L = shortlist size, S_V / T_V = source / target vocabulary sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.profiler import record_function

from mt import checkpoint as ckpt
from mt import config as config_mod
from mt import corpora, data
from mt.data import Encoded, pad_sources
from mt.errors import MTError
from mt.search import Hypothesis
from mt.state import members
from mt.vocab import SPECIALS, Vocab

FILE = "shortlist.safetensors"
KEEP = 50  # candidates kept per source word in the file; decode.shortlist's `best` reads the first of them


@dataclass(frozen=True)
class Shortlist:
    """by_count (T_V,) target ids, most frequent first; best (S_V, KEEP) each source id's candidates, best first
    (-1: none)."""

    by_count: Tensor
    best: Tensor

    def ids(self, src: Tensor, first: int, best: int) -> tuple[Tensor, Tensor]:
        """What a batch of sources (B, S) decodes over: the sorted target ids (L,) of all its sentences, and (B, L)
        0 where a sentence's own shortlist holds the word, -inf where not. A sentence's own: the specials (so BOS
        and EOS keep their ids), the `first` most frequent words and its words' `best` candidates; so its
        translation does not depend on the other sentences of its batch."""
        if best > self.best.size(1):
            raise MTError(f"decode.shortlist: at most {self.best.size(1)} candidates per source word are kept, "
                          f"not {best}")
        B, S = src.shape
        cand = self.best[src.cpu(), :best].reshape(B, -1)  # (B, S·best), -1 for none
        common = torch.cat([torch.arange(len(SPECIALS)), self.by_count[:first]])
        ids = torch.cat([common, cand[cand >= 0]]).unique()  # (L,) sorted
        blocked = torch.full((B, len(ids)), float("-inf"))
        blocked[:, torch.searchsorted(ids, common.unique())] = 0.0
        rows, cols = (cand >= 0).nonzero(as_tuple=True)
        blocked[rows, torch.searchsorted(ids, cand[rows, cols])] = 0.0
        return ids.to(src.device), blocked.to(src.device)


def vocab_digest(vocab: Vocab) -> str:
    """What a shortlist is checked against: its vocabulary, word for word."""
    return hashlib.sha256("\n".join(vocab.itos).encode()).hexdigest()[:16]


def build(pairs: Encoded, src_size: int, tgt_size: int, keep: int = KEEP) -> Shortlist:
    """Count target words and co-occurring (source, target) word pairs over the training pairs, rank each source
    word's targets by p(t | s)."""
    tgt_count = np.bincount(pairs.tgt, minlength=tgt_size)
    by_count = np.argsort(-tgt_count, kind="stable")
    codes, src_seen = [], []  # per training pair: its distinct (source, target) word pairs and source words
    for i in range(len(pairs)):
        s = np.unique(pairs.src[pairs.src_off[i]: pairs.src_off[i + 1]]).astype(np.int64)
        t = np.unique(pairs.tgt[pairs.tgt_off[i]: pairs.tgt_off[i + 1]]).astype(np.int64)
        codes.append((s[:, None] * tgt_size + t[None, :]).reshape(-1))  # (|s|·|t|,)
        src_seen.append(s)
    code, both = np.unique(_joined(codes), return_counts=True)
    s, t = code // tgt_size, code % tgt_size
    src_df = np.bincount(_joined(src_seen), minlength=src_size)  # how many pairs each word occurs in
    p_t_s = both / src_df[s]
    order = np.lexsort((t, -p_t_s, s))  # by source, then p(t | s) (high first), then id: deterministic
    s, t = s[order], t[order]
    starts = np.searchsorted(s, s)  # each row's group start
    rank = np.arange(len(s)) - starts
    table = np.full((src_size, keep), -1, dtype=np.int64)
    kept = rank < keep
    table[s[kept], rank[kept]] = t[kept]
    return Shortlist(torch.from_numpy(by_count.astype(np.int64)), torch.from_numpy(table))


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)


def save(shortlist: Shortlist, path: Path, src_vocab: Vocab, tgt_vocab: Vocab) -> None:
    """Atomically, with the digests of the vocabularies it indexes."""
    ckpt.save(path, {"by_count": shortlist.by_count.int(), "best": shortlist.best.int()},
              {"src_vocab": vocab_digest(src_vocab), "tgt_vocab": vocab_digest(tgt_vocab)})


def load(path: Path, src_vocab: Vocab, tgt_vocab: Vocab) -> Shortlist:
    """A checkpoint's shortlist; one clear error where it is missing or built for other vocabularies."""
    if not path.is_file():
        raise MTError(f"{path}: no such file (decode.shortlist reads the shortlist beside the checkpoint: `mt shortlist RUN` "
                      f"builds a run's, copy it beside a checkpoint written elsewhere)")
    tensors, meta = ckpt.load(path)
    if meta.get("src_vocab") != vocab_digest(src_vocab) or meta.get("tgt_vocab") != vocab_digest(tgt_vocab):
        raise MTError(f"{path} was built for other vocabularies than its checkpoint's: `mt shortlist RUN` builds it again")
    return Shortlist(tensors["by_count"].long(), tensors["best"].long())


@dataclass
class RestrictedState:
    """The model's own State, and each hypothesis's (A, L) mask of its sentence's shortlist."""

    inner: list[Any] = members()  # one State: the model's
    blocked: Tensor | None = None


class Restricted:
    """The model contract over a shortlist `ids` (L,): token ids in and out are positions in `ids`; each sentence
    decodes over its own shortlist (`blocked`, (B, L), Shortlist.ids)."""

    def __init__(self, model: Any, ids: Tensor, blocked: Tensor) -> None:
        self.model, self.ids, self.blocked = model, ids, blocked

    def encode(self, src: Tensor, src_len: Tensor) -> RestrictedState:
        return RestrictedState([self.model.encode(src, src_len)], self.blocked)

    def decode_step(self, prev: Tensor, state: RestrictedState) -> tuple[Tensor, RestrictedState]:
        """prev (A,) positions → log-probs (A, L), normalised over each hypothesis's sentence's shortlist."""
        logp, inner = self.model.decode_step(self.ids[prev], state.inner[0])
        with record_function("mt.output"):
            logp = logp + state.blocked
            logp = logp - logp.logsumexp(-1, keepdim=True)  # (A, L)
        return logp, RestrictedState([inner], state.blocked)


@contextmanager
def restricted(model: Any, shortlist: tuple[Tensor, Tensor] | None) -> Iterator[Any]:
    """`model` (shortlist None) or, while inside, the Restricted model whose output layer covers the shortlist's ids
    (Shortlist.ids) only."""
    if shortlist is None:
        yield model
        return
    try:
        with record_function("mt.output"):
            model.restrict_output(shortlist[0])
        yield Restricted(model, *shortlist)
    finally:
        model.restrict_output(None)


def widen(hyps: list[list[Hypothesis]], ids: Tensor | None) -> list[list[Hypothesis]]:
    """Hypotheses over shortlist positions → over the target vocabulary."""
    if ids is None:
        return hyps
    table = ids.tolist()
    return [[replace(h, tokens=[table[t] for t in h.tokens]) for h in hs] for hs in hyps]


def run_data(checkpoint: Path, log: Callable[[str], None]) -> data.Prepared:
    """The encoded data of the run a checkpoint belongs to (the corpus, fetched or found in the cache, must give the
    checkpoint's vocabularies)."""
    meta = ckpt.read_meta(checkpoint)
    cfg = config_mod.build(meta["config"])
    corpus_dir, _ = corpora.resolve(cfg.data.corpus, exclude=cfg.data.exclude)
    prep = data.prepare(cfg.data, corpus_dir, log)
    if prep.src_vocab.to_json() != meta["src_vocab"] or prep.tgt_vocab.to_json() != meta["tgt_vocab"]:
        raise MTError(f"corpus {cfg.data.corpus} no longer gives {checkpoint}'s vocabularies; cannot build or measure "
                      f"its shortlist")
    return prep


def build_for(checkpoint: Path, log: Callable[[str], None]) -> Path:
    """Build and save the shortlist of the run a checkpoint belongs to, from that run's training pairs."""
    prep = run_data(checkpoint, log)
    path = checkpoint.parent / FILE
    save(build(prep.split("train"), len(prep.src_vocab), len(prep.tgt_vocab)), path, prep.src_vocab, prep.tgt_vocab)
    return path


def measure(translator: Any, sources: list[list[int]], settings: list[tuple[int, int]], batch: int = 256) -> list[dict]:
    """For each (first, best): the share of `sources` whose greedy translation over the whole vocabulary uses only
    words of the sentence's own shortlist (for greedy search, the share decoded identically: renormalising the softmax
    does not move its arg-max), and the mean number of words a batch of `batch` sentences, longest first, decodes over."""
    whole = [set(h[0].tokens) for h in translator.translate_ids(sources, beam=1)]
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    table, rows = translator.shortlist_table(), []
    for first, best in settings:
        exact, unions = 0, []
        for start in range(0, len(order), batch):
            chunk = order[start: start + batch]
            src, _ = pad_sources([sources[i] for i in chunk])
            ids, blocked = table.ids(src, first, best)
            unions.append(len(ids))
            for i, row in zip(chunk, blocked):
                exact += whole[i] <= set(ids[row == 0].tolist())
        rows.append({"shortlist": [first, best], "exact_greedy": exact / max(1, len(sources)),
                     "words_per_batch": sum(unions) / max(1, len(unions))})
    return rows

