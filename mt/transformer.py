"""Transformer encoder–decoder (Vaswani et al. 2017), in the paper's order.

B = batch, S = source length, T = target length, D = d_model, h = n_heads, d_k = D / h,
V = vocabulary size. Masks come from mt.masks (True = may attend).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.profiler import record_function

from mt.masks import causal_mask, padding_mask
from mt.model_config import TransformerConfig  # noqa: F401  (the family's config, torch-free)
from mt.output import output_rows, project
from mt.state import per_sentence
from mt.vocab import PAD


class Dropout(nn.Module):
    """Inverted dropout. On CPU it draws one random byte per element, ~2× cheaper than nn.Dropout there; the
    drop rate is rounded to a multiple of 1/256 (0.1 → 0.1016) and outputs are rescaled to match. Elsewhere
    (CUDA) it is torch's fused dropout at the exact rate."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.threshold = round(p * 256)
        self.scale = 256 / (256 - self.threshold) if self.threshold < 256 else 0.0

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        if self.threshold == 0:  # p below 1/512 rounds to no dropout
            return x
        keep = torch.empty_like(x, dtype=torch.uint8).random_(0, 256) >= self.threshold
        return x * keep * self.scale


class PositionalEncoding(nn.Module):
    """Sinusoidal position encoding (§3.5): PE(pos, 2i) = sin(pos / 10000^(2i/D)), cos for 2i+1."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float).unsqueeze(1)  # (L, 1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (B, L, D) → x + PE[offset : offset + L]."""
        return x + self.pe[offset: offset + x.size(1)].to(x.dtype)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (§3.2.2) on torch's fused kernel.

    Self-attention projects q, k, v with one fused matrix; cross-attention projects q from
    the decoder and k, v (fused) from the encoder memory, once per sentence.
    """

    def __init__(self, d_model: int, n_heads: int, d_k: int, dropout: float, self_attention: bool) -> None:
        super().__init__()
        self.n_heads, self.d_k, self.dropout = n_heads, d_k, dropout
        inner = n_heads * d_k  # = d_model, except in a structurally pruned model (fewer heads)
        if self_attention:
            self.qkv = nn.Linear(d_model, 3 * inner)
        else:
            self.q = nn.Linear(d_model, inner)
            self.kv = nn.Linear(d_model, 2 * inner)
        self.out = nn.Linear(inner, d_model)
        self.record = False  # when True, keep the attention weights of the last call
        self.weights: Tensor | None = None  # (B, h, T_q, T_k)

    def split_heads(self, x: Tensor) -> Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, L, d_k)

    def self_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 × (B, L, h·d_k)
        return self.split_heads(q), self.split_heads(k), self.split_heads(v)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.kv(memory).chunk(2, dim=-1)  # 2 × (B, S, h·d_k)
        return self.split_heads(k), self.split_heads(v)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """softmax(q kᵀ / √d_k) v over allowed keys, heads merged and projected: (B, T_q, D)."""
        if self.record or (not self.training and q.device.type == "cpu"):
            # written out, in fp32 as on CPU always: what attention plots and unknown-word replacement read, and
            # outside training faster than the fused kernel (decoding's one or few queries per row: docs/speed.md)
            with record_function("mt.attention"):  # a label for `mt bench`'s breakdown (mt/tools/profile.py)
                scores = q.float() @ k.float().transpose(-2, -1) / math.sqrt(self.d_k)  # (B, h, T_q, T_k)
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                weights = scores.softmax(-1)
                if self.record:
                    self.weights = weights
                x = (weights @ v.float()).to(q.dtype)
        elif q.device.type == "cpu":
            # training: in fp32 even under bf16 autocast, torch's CPU bf16 kernel is slower (forward and backward
            # 2.4–3.7×, docs/speed.md)
            with torch.autocast("cpu", enabled=False):
                x = F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(), attn_mask=mask,
                    dropout_p=self.dropout if self.training else 0.0).to(q.dtype)
        else:  # CUDA: in the autocast dtype, on the fused (flash / memory-efficient) kernels
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        B, h, L, d_k = x.shape
        return self.out(x.transpose(1, 2).reshape(B, L, h * d_k))  # (B, L, D)


class PositionwiseFeedForward(nn.Module):
    """FFN(x) = max(0, x W1 + b1) W2 + b2, applied at every position alike (§3.3)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.w1, self.w2, self.dropout = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model), Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(self.dropout(F.relu(self.w1(x))))


class Sublayer(nn.Module):
    """Residual connection with layer norm (§3.1), pre-norm (x + f(LN(x))) or post-norm (LN(x + f(x)))."""

    def __init__(self, d_model: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.norm, self.dropout, self.pre_norm = nn.LayerNorm(d_model), Dropout(dropout), pre_norm

    def forward(self, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        if self.pre_norm:
            return x + self.dropout(fn(self.norm(x)))
        return self.norm(x + self.dropout(fn(x)))


class EncoderLayer(nn.Module):
    """Self-attention then FFN, each wrapped in a residual sublayer."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        pre = cfg.norm == "pre"
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.d_k, cfg.attention_dropout, True)
        self.ff = PositionwiseFeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.sub1, self.sub2 = (Sublayer(cfg.d_model, cfg.dropout, pre) for _ in range(2))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.sub1(x, lambda y: self.self_attn.attend(*self.self_attn.self_qkv(y), mask))
        return self.sub2(x, self.ff)


class DecoderLayer(nn.Module):
    """Masked self-attention, attention over the encoder memory, then FFN."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        pre = cfg.norm == "pre"
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.d_k, cfg.attention_dropout, True)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.d_k, cfg.attention_dropout, False)
        self.ff = PositionwiseFeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.sub1, self.sub2, self.sub3 = (Sublayer(cfg.d_model, cfg.dropout, pre) for _ in range(3))

    def forward(self, x: Tensor, tgt_mask: Tensor, mem_k: Tensor, mem_v: Tensor,
                src_mask: Tensor) -> Tensor:
        x = self.sub1(x, lambda y: self.self_attn.attend(*self.self_attn.self_qkv(y), tgt_mask))
        x = self.sub2(x, lambda y: self.cross_attn.attend(
            self.cross_attn.split_heads(self.cross_attn.q(y)), mem_k, mem_v, src_mask))
        return self.sub3(x, self.ff)

    def step(self, x: Tensor, cache_k: Tensor, cache_v: Tensor, mem_k: Tensor, mem_v: Tensor,
             src_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One new position x (B, 1, D) against the cached keys/values of earlier positions."""
        def self_attend(y: Tensor) -> Tensor:
            nonlocal cache_k, cache_v
            q, k, v = self.self_attn.self_qkv(y)  # (B, h, 1, d_k) each
            cache_k, cache_v = torch.cat([cache_k, k], 2), torch.cat([cache_v, v], 2)
            return self.self_attn.attend(q, cache_k, cache_v, None)  # the past is all visible

        def cross_attend(y: Tensor) -> Tensor:
            # the G hypotheses of a sentence share its memory row: they query it as G positions
            AG, _, D = y.shape
            A = mem_k.size(0)
            q = self.cross_attn.split_heads(self.cross_attn.q(y).view(A, AG // A, -1))  # (A, h, G, d_k)
            return self.cross_attn.attend(q, mem_k, mem_v, src_mask).view(AG, 1, D)

        x = self.sub1(x, self_attend)
        x = self.sub2(x, cross_attend)
        return self.sub3(x, self.ff), cache_k, cache_v


@dataclass
class TransformerState:
    """Decoding state, batch-first: source mask and per-layer memory K/V once per sentence (A rows),
    self-attention cache once per hypothesis (A·group rows)."""

    src_mask: Tensor = per_sentence()  # (A, 1, 1, S)
    mem_k: list[Tensor] = per_sentence()  # per layer (A, h, S, d_k)
    mem_v: list[Tensor] = per_sentence()
    cache_k: list[Tensor] = field(default_factory=list)  # per layer (A·group, h, t, d_k), t = positions so far
    cache_v: list[Tensor] = field(default_factory=list)
    step: int = 0
    group: int = 1  # hypotheses per sentence (the beam)


class Transformer(nn.Module):
    """Encoder–decoder Transformer implementing the mt.model contract."""

    def __init__(self, cfg: TransformerConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.src_embed = nn.Embedding(src_vocab, cfg.d_model, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, cfg.d_model, padding_idx=PAD)
        self.pos = PositionalEncoding(cfg.d_model, cfg.max_positions)
        self.dropout = Dropout(cfg.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_decoder_layers))
        # pre-norm stacks end with a layer norm; post-norm outputs are already normalised
        final = (lambda: nn.LayerNorm(cfg.d_model)) if cfg.norm == "pre" else nn.Identity
        self.encoder_norm, self.decoder_norm = final(), final()
        self.output = nn.Linear(cfg.d_model, tgt_vocab, bias=False)
        self.restricted: tuple[Tensor, Tensor | None] | None = None  # the output rows of a shortlist (restrict_output)
        self.scale = math.sqrt(cfg.d_model)  # §3.4: embeddings multiplied by √D
        self._init_weights()
        if cfg.tie_output:
            self.output.weight = self.tgt_embed.weight

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if "embed" in name:
                nn.init.normal_(p, std=self.cfg.d_model ** -0.5)
                with torch.no_grad():
                    p[PAD].zero_()
            elif p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def embed(self, table: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        return self.dropout(self.pos(table(ids) * self.scale, offset))  # (B, L, D)

    def run_encoder(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor]:
        """Source ids (B, S) → memory (B, S, D) and its key mask (B, 1, 1, S)."""
        src_mask = padding_mask(src_len, src.size(1))[:, None, None, :]
        x = self.embed(self.src_embed, src)
        for layer in self.encoder_layers:
            x = layer(x, src_mask)
        return self.encoder_norm(x), src_mask

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: logits (B, T, V) for every target position at once."""
        memory, src_mask = self.run_encoder(src, src_len)
        T = tgt_in.size(1)
        tgt_len = (tgt_in != PAD).sum(1)
        tgt_mask = causal_mask(T, tgt_in.device)[None, None] & padding_mask(tgt_len, T)[:, None, None, :]
        x = self.embed(self.tgt_embed, tgt_in)
        for layer in self.decoder_layers:
            mem_k, mem_v = layer.cross_attn.memory_kv(memory)
            x = layer(x, tgt_mask, mem_k, mem_v, src_mask)
        return self.output(self.decoder_norm(x))

    def encode(self, src: Tensor, src_len: Tensor) -> TransformerState:
        memory, src_mask = self.run_encoder(src, src_len)
        kv = [layer.cross_attn.memory_kv(memory) for layer in self.decoder_layers]
        B, h, d_k = src.size(0), self.cfg.n_heads, self.cfg.d_k
        empty = memory.new_zeros(B, h, 0, d_k)
        n = len(self.decoder_layers)
        return TransformerState(src_mask, [k for k, _ in kv], [v for _, v in kv],
                                [empty] * n, [empty] * n, 0)

    def decode_step(self, prev: Tensor, state: TransformerState) -> tuple[Tensor, TransformerState]:
        """prev (B,) token ids → log-probs (B, V) for the next position; only that position is computed."""
        x = self.embed(self.tgt_embed, prev[:, None], offset=state.step)  # (B, 1, D)
        cache_k, cache_v = [], []
        for i, layer in enumerate(self.decoder_layers):
            x, k, v = layer.step(x, state.cache_k[i], state.cache_v[i], state.mem_k[i],
                                 state.mem_v[i], state.src_mask)
            cache_k.append(k)
            cache_v.append(v)
        with record_function("mt.output"):  # the output layer and its softmax, a category of `mt bench translate`
            logits = project(self.decoder_norm(x), self.output, self.restricted)  # (B, 1, V), or (B, 1, L) restricted
            logp = logits[:, 0].float().log_softmax(-1)
        new = TransformerState(state.src_mask, state.mem_k, state.mem_v, cache_k, cache_v, state.step + 1, state.group)
        return logp, new

    def restrict_output(self, ids: Tensor | None) -> None:
        """Decode over the target ids `ids` (L,) alone (mt/shortlist.py), or over all (None)."""
        self.restricted = None if ids is None else output_rows(self.output, ids)

    def max_output_positions(self) -> int:
        return self.cfg.max_positions

    def attention_layers(self) -> int:
        return len(self.decoder_layers)

    def attention_module(self, layer: int, kind: str = "cross") -> nn.Module | None:
        """Decoder layer `layer`'s (1-based) encoder–decoder ("cross") or self-attention."""
        if not 1 <= layer <= len(self.decoder_layers):
            return None
        block = self.decoder_layers[layer - 1]
        return block.cross_attn if kind == "cross" else block.self_attn
