"""Reranking by a reverse model: the beam's translations y of a source x, reranked by how well a ja→en model
gives x back from each (decode.reverse, decode.reverse_weight).

A translation that drops a clause, a place or a modifier reads fluently, and the forward model may well prefer it;
read back into English, it cannot say the words it lost. So each of the beam's n-best is scored

    s(y) = s_fwd(y) + λ · log p_rev(x | y) / (|x| + 1)

s_fwd: the beam's own length-normalised log-probability; the reverse term: the English source's log-probability
per token (and EOS) under a model trained on the same data in the other direction (`data.direction = "ja-en"`),
teacher-forced, so it costs one batched forward pass per candidate and no search. This is the channel model of
noisy-channel reranking (Yee, Ng and Grangier 2019, "Simple and effective noisy channel modeling for neural
machine translation"; fairseq's examples/noisychannel), without the language model term.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from mt import checkpoint as ckpt
from mt import experiments
from mt.checks import content_word
from mt.dropped import token_log_probs, words_of
from mt.errors import MTError
from mt.text import Pipeline
from mt.vocab import UNK, Vocab


class Reverse:
    """A ja-en model that scores (English source, Japanese translation) pairs: log p(source | translation)."""

    def __init__(self, model, src_pipe: Pipeline, tgt_pipe: Pipeline, src_vocab: Vocab, tgt_vocab: Vocab,
                 device: torch.device, batch_size: int = 256) -> None:
        self.model, self.device, self.batch_size = model, device, batch_size
        self.src_pipe, self.tgt_pipe, self.src_vocab, self.tgt_vocab = src_pipe, tgt_pipe, src_vocab, tgt_vocab

    @classmethod
    def load(cls, where: str, device: torch.device) -> Reverse:
        """`where`: a ja-en run's name or folder, or a checkpoint file."""
        path = Path(where)
        path = path if path.is_file() else experiments.best_checkpoint(experiments.find_run(where))
        model, cfg, meta = ckpt.load_model(path, str(device))
        if cfg.data.direction != "ja-en":
            raise MTError(f"decode.reverse = {where!r}: {path} translates {cfg.data.direction}; the reverse model "
                          f"must translate ja-en (mt train --set 'data.direction=\"ja-en\"')")
        return cls(model, Pipeline(cfg.data.src_tokenizer, ckpt.sp_from_json(meta.get("src_sp"))),
                   Pipeline(cfg.data.tgt_tokenizer, ckpt.sp_from_json(meta.get("tgt_sp"))),
                   Vocab.from_json(meta["src_vocab"]), Vocab.from_json(meta["tgt_vocab"]), device)

    def _forced(self, english: list[str], japanese: list[str]):
        """Teacher-forced reading of each pair, batched by length: yields (pair indices, their (English tokens, English
        ids, Japanese ids), the (B, T) log p of each English token and then EOS)."""
        limit = self.model.max_output_positions() - 1
        rows = []
        for e, j in zip(english, japanese, strict=True):
            tokens = self.tgt_pipe.tokenize(e)[:limit - 1]
            rows.append((tokens, self.tgt_vocab.encode(tokens), self.src_vocab.encode(self.src_pipe.tokenize(j))[:limit]))
        order = sorted(range(len(rows)), key=lambda i: (len(rows[i][2]), len(rows[i][1])))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start: start + self.batch_size]
            yield chunk, [rows[i] for i in chunk], token_log_probs(
                self.model, [rows[i][2] for i in chunk], [rows[i][1] for i in chunk], self.device)

    def score(self, english: list[str], japanese: list[str]) -> list[float]:
        """log p(english[i] | japanese[i]) per English token (and EOS), for each pair."""
        out = [0.0] * len(english)
        for chunk, rows, lp in self._forced(english, japanese):
            for i, (_, ids, _), value in zip(chunk, rows, lp.sum(1).tolist()):
                out[i] = value / (len(ids) + 1)
        return out

    def read_back(self, english: list[str], japanese: list[str]) -> list[list[tuple[str, float]]]:
        """For the `readback` check: each pair's English content words the reverse model knows, each with its
        log p(word | japanese, the English before it), teacher-forced (a word of sentencepiece pieces: their sum);
        [] for an empty side."""
        kept = [i for i, (e, j) in enumerate(zip(english, japanese, strict=True)) if e.strip() and j.strip()]
        out: list[list[tuple[str, float]]] = [[] for _ in english]
        was_training = self.model.training
        self.model.eval()
        try:
            for chunk, rows, lp in self._forced([english[i] for i in kept], [japanese[i] for i in kept]):
                for k, (tokens, ids, _), row in zip(chunk, rows, lp.tolist()):
                    out[kept[k]] = [(w, sum(row[t] for t in span)) for w, span in words_of(tokens)
                                    if content_word(w) and all(ids[t] != UNK for t in span)]
        finally:
            self.model.train(was_training)
        return out

    def rerank(self, lines: list[str], candidates: list[list], weight: float) -> list[list]:
        """Each line's candidate Outputs (mt.translate.Output), best first by s_fwd + weight · reverse score;
        each Output's score becomes the combined one."""
        flat = [(i, o) for i, c in enumerate(candidates) for o in c if len(c) > 1]
        if not flat:
            return candidates
        scores = self.score([lines[i] for i, _ in flat], [o.text for _, o in flat])
        out = [list(c) if len(c) <= 1 else [] for c in candidates]
        for (i, o), s in zip(flat, scores):
            out[i].append(replace(o, score=o.score + weight * s))
        return [sorted(c, key=lambda o: -o.score) for c in out]
