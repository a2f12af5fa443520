"""Unknown-word replacement (Luong et al. 2015; OpenNMT's -replace_unk): an output <unk> becomes
the source word it attended to most.

A word vocabulary leaves names, numbers and rare words as <unk> on both sides. After search, the
hypotheses that contain <unk> go through one teacher-forced `forward` with the decoder's last
cross-attention recorded (mean over heads); each <unk> copies the source token with the largest
weight, chosen among the source's own unknown words when it has any (the likely counterpart),
else among all its words. Models without attention keep their <unk>.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mt.data import pad_sources, pad_targets
from mt.model import Seq2Seq
from mt.vocab import UNK


def cross_attention(model: Seq2Seq) -> nn.Module | None:
    """The attention the alignment is read from: the last decoder layer's cross-attention, or None."""
    n = model.attention_layers()
    return model.attention_module(n, "cross") if n else None


@torch.no_grad()
def alignments(model: nn.Module, sources: list[list[int]], outputs: list[list[int]],
               device: torch.device) -> list[Tensor]:
    """Per pair, attention weights (T, S) of output tokens over source ids (EOS column dropped)."""
    module = cross_attention(model)
    src, src_len = pad_sources(sources)  # (B, S): ids + EOS
    tgt_in, _ = pad_targets(outputs)  # (B, T): BOS + output, PAD after
    module.record = True
    try:
        model(src.to(device), src_len.to(device), tgt_in.to(device))
        weights = module.weights.float().cpu()  # (B, h, T, S) or, for the RNN, (B, T, S)
    finally:
        module.record, module.weights = False, None
    if weights.dim() == 4:
        weights = weights.mean(1)
    return [weights[i, : len(o), : len(s)] for i, (s, o) in enumerate(zip(sources, outputs, strict=True))]


def replace_unknowns(model: nn.Module, items: list[tuple[list[int], list[str], list[int]]],
                     device: torch.device, batch_size: int = 64) -> list[list[str | None]]:
    """items: (source ids, source tokens, output ids) → per output position the source token that
    replaces its <unk> (None where the output is not <unk>, or the model has no attention)."""
    out: list[list[str | None]] = [[None] * len(o) for _, _, o in items]
    todo = [i for i, (s, _, o) in enumerate(items) if UNK in o and s]  # an empty source has nothing to copy
    if not todo or cross_attention(model) is None:
        return out
    was_training = model.training
    model.eval()
    for start in range(0, len(todo), batch_size):
        chunk = todo[start: start + batch_size]
        weights = alignments(model, [items[i][0] for i in chunk], [items[i][2] for i in chunk], device)
        for i, w in zip(chunk, weights, strict=True):
            src_ids, src_tokens, out_ids = items[i]
            unknown = torch.tensor([s == UNK for s in src_ids])
            for t, tok in enumerate(out_ids):
                if tok == UNK:
                    row = w[t].masked_fill(~unknown, -1.0) if unknown.any() else w[t]
                    out[i][t] = src_tokens[int(row.argmax())]
    model.train(was_training)
    return out
