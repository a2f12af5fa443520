"""The model's side of the `dropped` check (mt/checks.py): which source words a translation ignores.

A dropped clause reads fluently, and no reference-free rule on the two strings sees it. A model can:
erasure (Li, Monroe and Jurafsky 2016, "Understanding neural networks through representation erasure")
force-decodes the translation y once with the whole source x and once with each content word j deleted,

    Δ_j = log p(y | x) − log p(y | x without j)      (nats, summed over y's tokens and EOS)

A word the translation says makes it less likely when deleted (the output token that says it loses its
reason, Δ_j > 0); a word it ignores does not, and often makes it likelier (Δ_j ≤ 0: y fits a source that
lacks the word). One sentence costs 1 + (its content words) teacher-forced passes, batched.

The model reads the translation with its own target pipeline, so it must read raw Japanese (janome words
or sentencepiece), not a corpus's pre-tokenized words; any such model checks any system's output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from mt.checks import content_word
from mt.data import pad_sources, pad_targets
from mt.vocab import EOS, PAD, Vocab

Deltas = list[tuple[str, float]]  # (source word, Δ) for each content word of one line


def words_of(tokens: list[str]) -> list[tuple[str, list[int]]]:
    """Model tokens → words, each with the token positions it spans (sentencepiece pieces joined at ▁)."""
    words: list[tuple[str, list[int]]] = []
    pieces = any(t.startswith("▁") for t in tokens)  # sentencepiece: a word starts at ▁
    for i, token in enumerate(tokens):
        if words and pieces and not token.startswith("▁"):
            text, span = words[-1]
            words[-1] = (text + token, span + [i])
        else:
            words.append((token.lstrip("▁"), [i]))
    return words


@torch.no_grad()
def token_log_probs(model: nn.Module, sources: list[list[int]], outputs: list[list[int]],
                    device: torch.device) -> Tensor:
    """Teacher-forced log p of each output token (then EOS) given the source and the output before it: (B, T),
    0 at padding."""
    src, src_len = pad_sources(sources)  # (B, S): ids + EOS
    tgt_in, gold = pad_targets(outputs)  # (B, T): BOS + output / output + EOS, PAD after
    gold = gold.to(device)
    logits = model(src.to(device), src_len.to(device), tgt_in.to(device)).float()  # (B, T, V)
    token = logits.log_softmax(-1).gather(-1, gold.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return (token * (gold != PAD)).cpu()


def log_probs(model: nn.Module, sources: list[list[int]], outputs: list[list[int]], device: torch.device) -> Tensor:
    """Teacher-forced log p(output + EOS | source) of each pair, summed over positions: (B,)."""
    return token_log_probs(model, sources, outputs, device).sum(1)


class Erasure:
    """Reads (source, translation) pairs with one model: each line's content words and their Δ."""

    def __init__(self, model: nn.Module, source: Callable[[str], tuple[list[str], list[int]]],
                 target: Callable[[str], list[str]], tgt_vocab: Vocab, device: torch.device,
                 batch_size: int = 64) -> None:
        self.model, self.source, self.target, self.tgt_vocab = model, source, target, tgt_vocab
        self.device, self.batch_size = device, batch_size
        self.limit = model.max_output_positions() - 1 if hasattr(model, "max_output_positions") else None

    @classmethod
    def for_translator(cls, translator) -> Erasure | None:
        """A loaded PyTorch translator's model as the reader; None where its target side reads corpus tokens."""
        if translator.tgt_pipe.pre == "space" and translator.tgt_pipe.sp_model is None:
            return None

        def source(text: str) -> tuple[list[str], list[int]]:
            ids, _ = translator.source_ids(text)
            return translator.source_tokens(text)[: len(ids)], ids
        return cls(translator.model, source, translator.tgt_pipe.tokenize, translator.tgt_vocab, translator.device)

    def __call__(self, sources: Sequence[str], translations: Sequence[str]) -> list[Deltas]:
        """Per line, (word, Δ) for each content word of the source; [] for an empty side."""
        rows: list[tuple[list[int], list[int]]] = []  # (source ids, output ids) to score
        plan: list[tuple[int, list[str]]] = []  # per line: its first row, its content words
        for src, hyp in zip(sources, translations, strict=True):
            tokens, ids = self.source(src) if src.strip() else ([], [])
            out = self.tgt_vocab.encode(self.target(hyp))[: self.limit] if hyp.strip() else []
            words = [(w, span) for w, span in words_of(tokens) if content_word(w)] if ids and out else []
            plan.append((len(rows), [w for w, _ in words]))
            if words:
                rows.append((ids, out))
                rows += [([t for k, t in enumerate(ids) if k not in span], out) for _, span in words]
        scores = torch.empty(len(rows))
        was_training = self.model.training
        self.model.eval()
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r][0]) - len(rows[r][1]))
        try:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start: start + self.batch_size]
                scores[chunk] = log_probs(self.model, [rows[r][0] or [EOS] for r in chunk],
                                          [rows[r][1] for r in chunk], self.device)
        finally:
            self.model.train(was_training)
        return [[(w, float(scores[first] - scores[first + 1 + k])) for k, w in enumerate(words)]
                for first, words in plan]
