"""Export a Transformer checkpoint to CTranslate2; translate and benchmark with the export.

The export folder holds what `ctranslate2.specs` writes (model.bin, config.json, vocabularies)
plus mt.json (our run config, vocabularies and sentencepiece models), so it translates alone.
Exactness choices (see /work/shared/notes/ctranslate2.md): our own sinusoid table is exported
(CT2's built-in one differs), pre-norm keeps its final layer norms and post-norm has none, the
tied projection is the target embedding array itself, and source EOS is added by CT2.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mt import checkpoint as ckpt
from mt import config as config_mod
from mt.errors import MTError
from mt.search import length_penalty, max_lengths
from mt.text import Pipeline
from mt.tools.structured import pad_heads
from mt.translate import Output, target_output
from mt.translate import source_tokens as text_tokens  # raw text → tokens, as the PyTorch translator
from mt.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab

META = "mt.json"
FORMAT = "mt-ctranslate2"
QUANTIZATIONS = ("int8", "int8_float32", "int16", "float16", "bfloat16", "float32")
_FACTOR_SEP = "\uffe8"  # CT2 reads "￨" inside a token as a source-factor separator


def _ct2():
    """Import ctranslate2 or fail with one line saying how to get it."""
    try:
        import ctranslate2  # lazy: an optional extra (mt-enja[ct2])
    except ImportError:
        raise MTError("CTranslate2 support needs the ctranslate2 package: pip install ctranslate2") from None
    return ctranslate2


def _f32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().numpy())


def _linear(spec: Any, layer: nn.Linear) -> None:
    """nn.Linear [out, in] is CT2's layout as is; our biases are always present."""
    spec.weight = _f32(layer.weight)
    if layer.bias is not None:
        spec.bias = _f32(layer.bias)


def _norm(spec: Any, ln: nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _f32(ln.weight), _f32(ln.bias)


def _self_attention(spec: Any, attn: nn.Module, norm: nn.LayerNorm) -> None:
    _norm(spec.layer_norm, norm)  # pre-norm: applied before; post-norm: after the residual
    _linear(spec.linear[0], attn.qkv)  # fused rows [Wq; Wk; Wv], CT2's split order
    _linear(spec.linear[1], attn.out)


def _ffn(spec: Any, ff: nn.Module, norm: nn.LayerNorm) -> None:
    _norm(spec.layer_norm, norm)
    _linear(spec.linear_0, ff.w1)
    _linear(spec.linear_1, ff.w2)


def build_spec(model: nn.Module, src_itos: list[str], tgt_itos: list[str]) -> Any:
    """Our Transformer's weights → a filled (unvalidated) ctranslate2 TransformerSpec."""
    _ct2()
    from ctranslate2.specs import common_spec, transformer_spec

    cfg = model.cfg
    pre = cfg.norm == "pre"
    spec = transformer_spec.TransformerSpec.from_config(
        (cfg.n_encoder_layers, cfg.n_decoder_layers), cfg.n_heads, pre_norm=pre,
        no_final_norm=False, activation=common_spec.Activation.RELU)
    enc, dec = spec.encoder, spec.decoder
    enc.scale_embeddings = dec.scale_embeddings = True  # CT2: × sqrt(d_model), as ours
    enc.embeddings[0].weight = _f32(model.src_embed.weight)
    dec.embeddings.weight = tgt = _f32(model.tgt_embed.weight)
    # tied: the same array object, so spec.optimize() stores it once as an alias
    dec.projection.weight = tgt if cfg.tie_output else _f32(model.output.weight)
    enc.position_encodings.encodings = pe = _f32(model.pos.pe)  # (max_positions, D), row i = position i
    dec.position_encodings.encodings = pe
    for layer, ours in zip(enc.layer, model.encoder_layers, strict=True):
        _self_attention(layer.self_attention, ours.self_attn, ours.sub1.norm)
        _ffn(layer.ffn, ours.ff, ours.sub2.norm)
    for layer, ours in zip(dec.layer, model.decoder_layers, strict=True):
        _self_attention(layer.self_attention, ours.self_attn, ours.sub1.norm)
        _norm(layer.attention.layer_norm, ours.sub2.norm)
        _linear(layer.attention.linear[0], ours.cross_attn.q)
        _linear(layer.attention.linear[1], ours.cross_attn.kv)  # fused rows [Wk; Wv] on the memory
        _linear(layer.attention.linear[2], ours.cross_attn.out)
        _ffn(layer.ffn, ours.ff, ours.sub3.norm)
    if pre:  # post-norm stacks end in Identity, and CT2's post-norm spec has no final-norm slot
        _norm(enc.layer_norm, model.encoder_norm)
        _norm(dec.layer_norm, model.decoder_norm)
    spec.register_source_vocabulary(src_itos)
    spec.register_target_vocabulary(tgt_itos)
    c = spec.config
    c.unk_token, c.bos_token, c.eos_token = SPECIALS[UNK], SPECIALS[2], SPECIALS[EOS]
    c.decoder_start_token = SPECIALS[2]  # <s> at decoder position 0, as our BOS
    c.add_source_bos, c.add_source_eos = False, True  # pad_sources appends EOS to every source
    c.layer_norm_epsilon = model.encoder_layers[0].sub1.norm.eps
    return spec


def export_ctranslate2(checkpoint_path: Path | str, out_dir: Path | str,
                       quantization: str | None = None) -> Path:
    """Write a CTranslate2 model folder for a Transformer checkpoint (atomically); return it."""
    _ct2()
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise MTError(f"unknown quantization {quantization!r}; valid: {', '.join(QUANTIZATIONS)}")
    model, cfg, meta = ckpt.load_model(Path(checkpoint_path))
    if cfg.model_type != "transformer":
        raise MTError(f"only Transformer checkpoints export to CTranslate2; {checkpoint_path} "
                      f"is a {cfg.model_type} model")
    if meta.get("quantized"):
        raise MTError(f"{checkpoint_path} is quantized by mt; export its float checkpoint "
                      f"and pass --quantization instead")
    spec = build_spec(pad_heads(model), meta["src_vocab"], meta["tgt_vocab"])  # CT2: h·d_k = d_model
    spec.validate()
    spec.optimize(quantization=quantization)
    info = {"format": FORMAT, "version": 1, "checkpoint": str(checkpoint_path),
            "quantization": quantization or "float32", "config": meta["config"],
            "src_vocab": meta["src_vocab"], "tgt_vocab": meta["tgt_vocab"],
            "src_sp": meta.get("src_sp"), "tgt_sp": meta.get("tgt_sp")}
    return _save_atomic(spec, info, Path(out_dir))


def _save_atomic(spec: Any, info: dict, out: Path) -> Path:
    """Save into a temp folder beside `out`, then rename it into place (replacing an old export)."""
    if out.exists() and any(out.iterdir()) and not (out / META).exists():
        raise MTError(f"{out} exists and is not an mt CTranslate2 export; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    old = tmp.with_suffix(".old")
    try:
        spec.save(str(tmp))
        (tmp / META).write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def read_info(model_dir: Path | str) -> dict:
    """The mt.json of an export; one clear error if the folder is not one."""
    path = Path(model_dir) / META
    if not path.is_file():
        raise MTError(f"{model_dir} is not an mt CTranslate2 export (no {META}; make one with `mt export`)")
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("format") != FORMAT:
        raise MTError(f"{path}: unknown export format {info.get('format')!r}")
    return info


class CT2Translator:
    """Translator over a CTranslate2 export: same pipelines, limits and outputs as mt.translate.

    Search differences: CT2's length penalty is score / len^alpha (len includes EOS), which is
    exactly our `length_penalty = "length"`. Our default "wu", ((5 + len) / 6)^alpha, has no CT2
    equivalent: CT2 searches with len^alpha, then its `beam` finished hypotheses are re-ranked
    with ours. A line whose source has no tokens at all gives "" here (CT2 skips an empty
    source) where ours decodes from a lone EOS.
    """

    def __init__(self, model_dir: Path | str, device: str = "cpu", compute_type: str = "default",
                 inter_threads: int = 1, intra_threads: int = 2) -> None:
        ct2 = _ct2()
        info = read_info(model_dir)
        cfg = config_mod.build(info["config"])
        self.model_dir, self.decode, self.model_cfg = Path(model_dir), cfg.decode, cfg.model
        self.src_pipe = Pipeline(cfg.data.src_tokenizer, ckpt.sp_from_json(info.get("src_sp")))
        self.tgt_pipe = Pipeline(cfg.data.tgt_tokenizer, ckpt.sp_from_json(info.get("tgt_sp")))
        self.src_vocab = Vocab.from_json(info["src_vocab"])
        self.translator = ct2.Translator(str(model_dir), device=device, compute_type=compute_type,
                                         inter_threads=inter_threads, intra_threads=intra_threads)

    def source_limit(self) -> int:
        """The most source tokens the model reads, as Translator.source_limit."""
        return min(self.decode.max_src_len, self.model_cfg.max_positions - 1)

    def source_ids(self, text: str) -> tuple[list[int], bool]:
        """A raw sentence → ids, truncated to source_limit() (second value: was it truncated)."""
        ids = self.src_vocab.encode(text_tokens(text, self.src_pipe, self.src_vocab))
        limit = self.source_limit()
        return ids[:limit], len(ids) > limit

    def source_tokens(self, ids: list[int]) -> list[str]:
        """Ids → the token strings CT2 maps back to the same ids (unknowns as <unk>)."""
        return [SPECIALS[UNK] if _FACTOR_SEP in t else t for t in (self.src_vocab.itos[i] for i in ids)]

    def translate_tokens(self, sources: list[list[str]], beam: int | None = None, nbest: int = 1,
                         batch_size: int | None = None) -> list[list[tuple[list[str], float]]]:
        """Source tokens (no EOS) → n-best (target tokens, score) each, in input order.

        Sentences are grouped by our per-sentence output limit a·(|src|+1) + b (EOS included),
        since CT2 takes one max_decoding_length per call.
        """
        beam = beam or self.decode.beam
        batch_size = batch_size or self.decode.batch_size
        d = self.decode
        lens = torch.tensor([len(s) + 1 for s in sources], dtype=torch.long)
        limits = max_lengths(lens, d.max_len_a, d.max_len_b, self.model_cfg.max_positions - 1).tolist()
        results: list[list[tuple[list[str], float]]] = [[([], 0.0)] for _ in sources]
        for limit in sorted(set(limits) - {1}):  # limit 1: ours forces EOS at once (empty output)
            group = [i for i, m in enumerate(limits) if m == limit]
            res = self.translator.translate_batch(
                [sources[i] for i in group], beam_size=beam, num_hypotheses=beam, patience=1,
                length_penalty=d.alpha, coverage_penalty=0, repetition_penalty=1,
                no_repeat_ngram_size=0, disable_unk=False,
                # CT2 stops after max_decoding_length tokens without emitting EOS; we force EOS
                # at step `limit`, i.e. after limit - 1 free tokens
                max_decoding_length=limit - 1, min_decoding_length=0, max_input_length=0,
                max_batch_size=batch_size, batch_type="examples", return_scores=True,
                return_end_token=True)
            greedy = beam == 1 and nbest == 1
            for i, r in zip(group, res, strict=True):
                hyps = [self._rescore(list(h), s, greedy) for h, s in zip(r.hypotheses, r.scores, strict=True)]
                results[i] = sorted(hyps, key=lambda x: -x[1])[:nbest]
        return results

    def _rescore(self, tokens: list[str], score: float, greedy: bool) -> tuple[list[str], float]:
        """CT2 score (log-prob / len^alpha, len with EOS if emitted) → our score; EOS stripped.

        Ours: greedy reports the raw log-prob; beam divides it by length_penalty(len + 1), the
        +1 being EOS (forced, at log-prob 0, when the length limit is hit).
        """
        d = self.decode
        ended = bool(tokens) and tokens[-1] == SPECIALS[EOS]
        raw = score * len(tokens) ** d.alpha if tokens else score
        tokens = tokens[:-1] if ended else tokens
        if greedy:
            return tokens, raw
        return tokens, raw / length_penalty(len(tokens) + 1, d.alpha, d.length_penalty)

    def translate(self, lines: list[str], beam: int | None = None, nbest: int = 1,
                  batch_size: int | None = None) -> list[list[Output]]:
        """Raw sentences → n-best Outputs each; empty input lines give an empty output."""
        todo = [i for i, line in enumerate(lines) if line.strip()]
        sources = [self.source_tokens(self.source_ids(lines[i])[0]) for i in todo]
        hyps = self.translate_tokens(sources, beam, nbest, batch_size)
        out: list[list[Output]] = [[Output("", "", 0.0)] for _ in lines]
        for i, h in zip(todo, hyps, strict=True):
            out[i] = [self.output(tokens, score) for tokens, score in h] or [Output("", "", 0.0)]
        return out

    def output(self, tokens: list[str], score: float) -> Output:
        """As Vocab.decode does for ours: <pad> and <s> are generated tokens but never words."""
        hidden = (SPECIALS[PAD], SPECIALS[BOS])
        return target_output([t for t in tokens if t not in hidden], self.tgt_pipe, score)


def bench_ct2(model_dir: Path | str, sources: list[str], beam: int, repeats: int = 3,
              compute_type: str = "default", intra_threads: int = 2,
              batch_size: int | None = None) -> dict[str, float]:
    """Decoding speed of an export: median of `repeats` timed runs after one warm-up.

    Sources are tokenized outside the timer (model loading too); tokens = generated target
    tokens, EOS excluded. Run it in its own process: CT2 and torch each bring an OpenMP pool.
    """
    tr = CT2Translator(model_dir, compute_type=compute_type, intra_threads=intra_threads)
    todo = [tr.source_tokens(tr.source_ids(s)[0]) for s in sources if s.strip()]
    if not todo:
        raise MTError("nothing to benchmark: all source lines are empty")
    tr.translate_tokens(todo[:8], beam, 1, batch_size)  # warm-up
    times, n_tokens = [], 0
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        res = tr.translate_tokens(todo, beam, 1, batch_size)
        times.append(time.perf_counter() - start)
        n_tokens = sum(len(r[0][0]) for r in res if r)
    seconds = max(statistics.median(times), 1e-9)
    return {"sentences_per_s": len(todo) / seconds, "tokens_per_s": n_tokens / seconds}

