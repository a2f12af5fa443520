"""RNN encoder–decoder (Sutskever et al. 2014; Cho et al. 2014) with optional attention.

attention = "none": the encoder's final state initialises the decoder (the course exercise);
"bahdanau": additive attention from the previous decoder state (Bahdanau et al. 2015);
"luong": multiplicative "general" attention on the current state (Luong et al. 2015, §3.1).
B = batch, S = source length, T = target length, E = embedding size, H = hidden size,
L = layers, V = vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.profiler import record_function

from mt.masks import padding_mask
from mt.model_config import RNNConfig  # noqa: F401  (the family's config, torch-free)
from mt.output import output_rows, project
from mt.vocab import PAD


def _rnn(cfg: RNNConfig, input_size: int, hidden: int, bidirectional: bool) -> nn.RNNBase:
    cls = nn.GRU if cfg.cell == "gru" else nn.LSTM
    return cls(input_size, hidden, cfg.n_layers, batch_first=True, bidirectional=bidirectional,
               dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)


class Attention(nn.Module):
    """Scores a query against every memory position; padded positions get no weight."""

    def __init__(self, kind: str, hidden: int) -> None:
        super().__init__()
        self.kind, self.n_heads = kind, 1
        if kind == "bahdanau":  # e = vᵀ tanh(W q + U h)
            self.key = nn.Linear(hidden, hidden, bias=False)
            self.query = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, 1, bias=False)
        else:  # luong general: e = qᵀ W h
            self.key = nn.Linear(hidden, hidden, bias=False)
        self.record = False
        self.weights: Tensor | None = None  # (B, T, S)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """query (B, T, H), keys/memory (B, S, H), src_mask (B, S) → context (B, T, H)."""
        if self.kind == "bahdanau":
            e = self.v(torch.tanh(self.query(query)[:, :, None] + keys[:, None])).squeeze(-1)  # (B, T, S)
        else:
            e = query @ keys.transpose(1, 2)  # (B, T, S)
        weights = e.masked_fill(~src_mask[:, None, :], float("-inf")).softmax(-1)
        if self.record:
            self.weights = weights
        return weights @ memory


@dataclass
class RNNState:
    """Decoding state, batch-first."""

    hidden: Tensor  # (B, L, H)
    cell: Tensor | None  # (B, L, H) for LSTM
    memory: Tensor  # (B, S, H) encoder outputs
    keys: Tensor  # (B, S, H) memory projected once for attention
    src_mask: Tensor  # (B, S)


class RNNSeq2Seq(nn.Module):
    """RNN encoder–decoder implementing the mt.model contract."""

    def __init__(self, cfg: RNNConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        self.cfg = cfg
        H, E = cfg.hidden_size, cfg.emb_size
        self.src_embed = nn.Embedding(src_vocab, E, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, E, padding_idx=PAD)
        self.encoder = _rnn(cfg, E, H // 2 if cfg.bidirectional else H, cfg.bidirectional)
        feed = H if cfg.attention == "bahdanau" else 0  # Bahdanau feeds the context into the RNN
        self.decoder = _rnn(cfg, E + feed, H, False)
        self.attention = Attention(cfg.attention, H) if cfg.attention != "none" else None
        # attentional hidden state h̃ = tanh(W_c [c; h]) (Luong eq. 5); plain h without attention
        self.combine = nn.Linear(2 * H, H) if self.attention else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(H, tgt_vocab)
        self.restricted: tuple[Tensor, Tensor | None] | None = None  # the output rows of a shortlist (restrict_output)
        if cfg.tie_output:
            self.output.weight = self.tgt_embed.weight

    # -- encoder -------------------------------------------------------------------------
    def encode(self, src: Tensor, src_len: Tensor) -> RNNState:
        """Run the encoder; its final state (both directions concatenated) starts the decoder."""
        x = self.dropout(self.src_embed(src))  # (B, S, E)
        packed = pack_padded_sequence(x, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, H)
        h, c = final if isinstance(final, tuple) else (final, None)
        h = self._merge_directions(h)
        c = self._merge_directions(c) if c is not None else None
        keys = self.attention.key(memory) if self.attention else memory
        return RNNState(h, c, memory, keys, padding_mask(src_len, src.size(1)))

    def _merge_directions(self, h: Tensor) -> Tensor:
        """(L·dirs, B, H/dirs) → (B, L, H)."""
        L = self.cfg.n_layers
        if self.cfg.bidirectional:
            h = h.view(L, 2, h.size(1), h.size(2))  # (L, 2, B, H/2)
            h = torch.cat([h[:, 0], h[:, 1]], dim=-1)  # (L, B, H)
        return h.transpose(0, 1)  # (B, L, H)

    # -- decoder -------------------------------------------------------------------------
    def _run_decoder(self, emb: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        """Decoder over emb (B, T, E) from `state`; returns pre-softmax features (B, T, H)."""
        h0 = state.hidden.transpose(0, 1).contiguous()  # (L, B, H)
        init = (h0, state.cell.transpose(0, 1).contiguous()) if state.cell is not None else h0
        if self.cfg.attention == "bahdanau":
            return self._run_bahdanau(emb, init, state)
        out, final = self.decoder(emb, init)  # out (B, T, H)
        if self.attention:
            context = self.attention(out, state.keys, state.memory, state.src_mask)
            out = torch.tanh(self.combine(torch.cat([context, out], -1)))
        return out, self._with_final(state, final)

    def _run_bahdanau(self, emb: Tensor, init, state: RNNState) -> tuple[Tensor, RNNState]:
        """Attention reads the previous state s_{t-1}, so the decoder steps one position at a time."""
        outs, weights, hidden = [], [], init
        for t in range(emb.size(1)):
            top = (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]  # (B, H)
            context = self.attention(top[:, None], state.keys, state.memory, state.src_mask)  # (B, 1, H)
            if self.attention.record:
                weights.append(self.attention.weights)
            out, hidden = self.decoder(torch.cat([emb[:, t: t + 1], context], -1), hidden)
            outs.append(torch.tanh(self.combine(torch.cat([context, out], -1))))
        if self.attention.record:
            self.attention.weights = torch.cat(weights, 1)
        return torch.cat(outs, 1), self._with_final(state, hidden)

    @staticmethod
    def _with_final(state: RNNState, final) -> RNNState:
        h, c = final if isinstance(final, tuple) else (final, None)
        return RNNState(h.transpose(0, 1), c.transpose(0, 1) if c is not None else None,
                        state.memory, state.keys, state.src_mask)

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: logits (B, T, V)."""
        state = self.encode(src, src_len)
        out, _ = self._run_decoder(self.dropout(self.tgt_embed(tgt_in)), state)
        return self.output(self.dropout(out))

    def decode_step(self, prev: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        """prev (B,) → log-probs (B, V) and the advanced state."""
        out, state = self._run_decoder(self.dropout(self.tgt_embed(prev[:, None])), state)
        with record_function("mt.output"):  # the output layer and its softmax, a category of `mt bench translate`
            logits = project(self.dropout(out), self.output, self.restricted)  # (B, 1, V), or (B, 1, L) restricted
            return logits[:, 0].float().log_softmax(-1), state

    def restrict_output(self, ids: Tensor | None) -> None:
        """Decode over the target ids `ids` (L,) alone (mt/shortlist.py), or over all (None)."""
        self.restricted = None if ids is None else output_rows(self.output, ids)

    def max_output_positions(self) -> int:
        return 10_000

    def attention_layers(self) -> int:
        return 1 if self.attention else 0

    def attention_module(self, layer: int, kind: str = "cross") -> nn.Module | None:
        """The one attention between decoder and encoder states (layer 1); no self-attention."""
        return self.attention if kind == "cross" and layer == 1 else None
