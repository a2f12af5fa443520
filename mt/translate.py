"""Translator: raw English → Japanese with a trained model, in sorted batches, order kept."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, TextIO

import torch
from torch import Tensor
from torch.profiler import record_function

from mt import checkpoint as ckpt
from mt.config import DecodeConfig
from mt.coverage import rerank
from mt.data import pad_sources
from mt.ensemble import Ensemble
from mt.errors import MTError
from mt.lexicon import fill
from mt.lexicon import load as load_dictionary
from mt.names import forms, mask, name_in, titles, written_as
from mt.numbers import unmatched
from mt.optim import use_bf16
from mt.renumber import from_source, proxy, shapes
from mt.reverse import Reverse
from mt.search import Hypothesis, beam_search, greedy, max_lengths
from mt.sentences import plan_line
from mt.shortlist import FILE as SHORTLIST_FILE
from mt.shortlist import Shortlist, restricted, widen
from mt.shortlist import load as load_shortlist
from mt.text import Pipeline, balance_brackets, detokenize_en, detokenize_ja, known_spelling
from mt.unk import cross_attention, replace_unknowns
from mt.vocab import UNK, Vocab


@dataclass(frozen=True)
class Output:
    text: str  # natural Japanese (detokenized)
    tokens: str  # corpus-style words joined by spaces (what corpus-token BLEU scores)
    score: float


def source_tokens(text: str, src_pipe: Pipeline, src_vocab: Vocab) -> list[str]:
    """A raw sentence → source tokens; with a word vocabulary, unknown British spellings become known
    American ones (text.known_spelling). Shared by the PyTorch and CTranslate2 translators."""
    tokens = src_pipe.tokenize(text)
    if src_pipe.sp_model is None:
        tokens = [known_spelling(t, src_vocab.stoi) for t in tokens]
    return tokens


def target_output(tokens: list[str], tgt_pipe: Pipeline, score: float, lang: str = "ja") -> Output:
    """Output tokens → words (unpartnered brackets dropped) → natural text (Japanese, or English for a ja-en
    model). Shared by both translators."""
    words = balance_brackets(tgt_pipe.words(tokens))
    return Output((detokenize_ja if lang == "ja" else detokenize_en)(words), " ".join(words), score)


class Translator:
    """Holds a model with its pipelines and vocabularies; decodes batches of sentences."""

    def __init__(self, model, src_pipe: Pipeline, tgt_pipe: Pipeline, src_vocab: Vocab,
                 tgt_vocab: Vocab, decode: DecodeConfig, device: str = "cpu", lang: str = "ja",
                 shortlist: Path | None = None) -> None:
        self.model, self.decode, self.device = model, decode, torch.device(device)
        self.shortlist_path = shortlist  # the run's shortlist file, read when decode.shortlist first asks (_shortlist)
        self._table: Shortlist | None = None
        self.lang = lang  # the target's language: ja, or en for a ja-en model
        self.src_pipe, self.tgt_pipe, self.src_vocab, self.tgt_vocab = src_pipe, tgt_pipe, src_vocab, tgt_vocab
        self.dictionary = load_dictionary(decode.dictionary)
        self._reverse: Reverse | None = None  # decode.reverse's model, loaded when first used
        self._numerals: dict[str, list[str]] | None = None  # numerals of the source vocabulary by shape (renumber)

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu", keep_unk: bool = False, **overrides) -> Translator:
        """Load a checkpoint. `overrides`: fields of its decode config to set (beam, alpha, dictionary, numbers,
        coverage, names, precision, clauses: mt/config.py DecodeConfig), None or a beam of 0 = the run's own;
        `keep_unk` turns unknown-word replacement off."""
        model, cfg, meta = ckpt.load_model(path, device)
        given = {k: v for k, v in overrides.items() if v is not None and not (k == "beam" and not v)}
        if keep_unk:
            given["replace_unk"] = False
        cfg = replace(cfg, decode=replace(cfg.decode, **given))
        model = decoding_weights(model, cfg.decode.precision, torch.device(device), meta.get("quantized"), path)
        src_pipe = Pipeline(cfg.data.src_tokenizer, ckpt.sp_from_json(meta.get("src_sp")))
        tgt_pipe = Pipeline(cfg.data.tgt_tokenizer, ckpt.sp_from_json(meta.get("tgt_sp")))
        src_vocab, tgt_vocab = Vocab.from_json(meta["src_vocab"]), Vocab.from_json(meta["tgt_vocab"])
        translator = cls(model, src_pipe, tgt_pipe, src_vocab, tgt_vocab, cfg.decode, device, cfg.data.langs[1],
                         Path(path).parent / SHORTLIST_FILE)
        if any(cfg.decode.shortlist):
            translator.shortlist_table()  # a missing or mismatched file: the error now, not at the first batch
        return translator

    @classmethod
    def from_checkpoints(cls, paths: list[Path], device: str = "cpu", keep_unk: bool = False,
                         weights: list[float] | None = None, combine: str = "prob", **overrides) -> Translator:
        """One checkpoint, or an ensemble of several (mt/ensemble.py) that must share vocabularies and
        pipelines, combined by `combine`; the search settings (beam, α, …) are the first checkpoint's, with
        `overrides` (as from_checkpoint)."""
        first = cls.from_checkpoint(paths[0], device, keep_unk, **overrides)
        if len(paths) == 1:
            if weights and len(weights) != 1:
                raise MTError(f"--weights: {len(weights)} weights for 1 model")
            return first
        models = [first.model]
        for path in paths[1:]:
            other = cls.from_checkpoint(path, device, precision=first.decode.precision, shortlist=(0, 0))
            _check_shared(paths[0], first, path, other)
            models.append(other.model)
        ensemble = Ensemble(models, weights, combine).to(device).eval()
        translator = cls(ensemble, first.src_pipe, first.tgt_pipe, first.src_vocab, first.tgt_vocab, first.decode,
                         device, first.lang, first.shortlist_path)
        translator._table = first._table  # the first member's shortlist, where it was read
        return translator

    @property
    def precision(self) -> str:
        """The dtype the weights decode in: "bf16" or "fp32" (decode.precision after the CPU's fallback)."""
        return "bf16" if next(self.model.parameters()).dtype == torch.bfloat16 else "fp32"

    def source_tokens(self, text: str) -> list[str]:
        return source_tokens(text, self.src_pipe, self.src_vocab)

    def source_limit(self) -> int:
        """The most source tokens the model reads: decode.max_src_len, or fewer where its positions end."""
        return min(self.decode.max_src_len, self.model.max_output_positions() - 1)

    def source_ids(self, text: str, masked: bool = False, proxies: bool = True) -> tuple[list[int], bool]:
        """A raw sentence → ids, truncated to source_limit() (second value: was it truncated); `masked`:
        rare names become <unk> and titles the vocabulary lacks one it has (mt/names.py). With
        decode.numbers = "source", a number the vocabulary lacks (45, 10:30, thirty-two: the model would drop
        it as <unk>) reaches the model as one it knows of the same shape (mt.renumber.proxy), and mt/renumber.py
        writes the source's number back into the translation (`proxies`=False: not)."""
        tokens = self.source_tokens(text)
        if masked:
            tokens = titles(tokens, self.src_vocab.stoi.__contains__)
            ids = mask(tokens, self.src_vocab.encode(tokens), text, first_is_name=self._first_is_name)
        else:
            ids = self.src_vocab.encode(tokens)
        if proxies and self._proxies_numbers() and UNK in ids:
            if self._numerals is None:
                self._numerals = shapes(self.src_vocab.itos)
            stand_in = [proxy(t, self._numerals, tokens) if i == UNK else None for t, i in zip(tokens, ids)]
            ids = [self.src_vocab.stoi[p] if p else i for p, i in zip(stand_in, ids)]
        limit = self.source_limit()
        return ids[:limit], len(ids) > limit

    def _proxies_numbers(self) -> bool:
        return self.decode.numbers == "source" and self.src_pipe.sp_model is None

    def _proxied(self, line: str) -> bool:
        """Does a number in `line` go in as another (source_ids)? Only a line with an <unk> can."""
        plain = self.source_ids(line, proxies=False)[0]
        return UNK in plain and self.source_ids(line)[0] != plain

    def output(self, hyp: Hypothesis, copies: list[str | None] | None = None) -> Output:
        """A hypothesis → text; `copies[t]` (unknown-word replacement) stands in for output token t."""
        tokens = self.tgt_vocab.decode(hyp.tokens)
        if copies:
            tokens = [c or w for w, c in zip(tokens, copies)]
        return target_output(tokens, self.tgt_pipe, hyp.score, self.lang)

    @torch.no_grad()
    def translate_ids(self, sources: list[list[int]], beam: int | None = None,
                      nbest: int = 1, batch_size: int | None = None) -> list[list[Hypothesis]]:
        """Decode id sequences longest-first in batches; results come back in input order."""
        beam = beam or self.decode.beam
        batch_size = batch_size or self.decode.batch_size
        cap = self.model.max_output_positions() - 1
        order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
        results: list[list[Hypothesis]] = [[] for _ in sources]
        for start in range(0, len(order), batch_size):
            chunk = order[start: start + batch_size]
            src, src_len = pad_sources([sources[i] for i in chunk])
            src, src_len = src.to(self.device), src_len.to(self.device)
            limit = max_lengths(src_len, self.decode.max_len_a, self.decode.max_len_b, cap)
            cover = self.decode.coverage > 0 and not (beam == 1 and nbest == 1)  # rerank the whole beam by coverage
            hyps = self._search(src, src_len, limit, beam, max(nbest, beam) if cover else nbest)
            if cover:
                hyps = [h[:nbest] for h in rerank(self.model, [sources[i] for i in chunk], hyps,
                                                  self.decode.coverage, self.device)]
            for i, h in zip(chunk, hyps):
                results[i] = h
        return results

    def _search(self, src: Tensor, src_len: Tensor, limit: Tensor, beam: int, nbest: int) -> list[list[Hypothesis]]:
        """One batch's search: greedy, or beam search keeping the n best; over decode.shortlist's target words where
        it is set (mt/shortlist.py)."""
        first, best = self.decode.shortlist
        with record_function("mt.output"):
            shortlist = self.shortlist_table().ids(src, first, best) if first or best else None
        with restricted(self.model, shortlist) as model:
            if beam == 1 and nbest == 1:
                hyps = [[h] for h in greedy(model, src, src_len, limit)]
            else:
                hyps = beam_search(model, src, src_len, limit, beam, self.decode.alpha, self.decode.length_penalty,
                                   nbest, self.decode.patience)
        return widen(hyps, shortlist[0] if shortlist else None)

    def shortlist_table(self) -> Shortlist:
        """decode.shortlist's table (mt/shortlist.py), read once; one clear error where the run has none."""
        if self._table is None:
            if self.shortlist_path is None:
                raise MTError("decode.shortlist: this model was not loaded from a checkpoint, so it has no shortlist")
            self._table = load_shortlist(self.shortlist_path, self.src_vocab, self.tgt_vocab)
        return self._table

    def translate(self, lines: list[str], beam: int | None = None, nbest: int = 1,
                  batch_size: int | None = None) -> list[list[Output]]:
        """Raw sentences → n-best Outputs each; empty input lines give an empty output.

        With decode.numbers = "source" (and a word vocabulary), a sentence with a number the vocabulary lacks
        goes in with a known one in its place (source_ids) and is also decoded as it is; the translation that
        gets fewer numbers wrong is kept (the proxied one where as many). With decode.names = "source", a
        sentence whose translation lost a rare name (none of the ways to write it is in the output:
        mt/names.py) is decoded again with its names as <unk>, which the model carries through and
        unknown-word replacement copies back."""
        out = self._translate(lines, beam, nbest, batch_size, masked=False)
        if self._proxies_numbers():  # where a number went in as another, the translation without it if it is better
            proxied = [i for i, line in enumerate(lines) if line.strip() and self._proxied(line)]
            plain = self._translate([lines[i] for i in proxied], beam, nbest, batch_size, False, proxies=False)
            for i, o in zip(proxied, plain):
                if _number_faults(lines[i], o[0].text) < _number_faults(lines[i], out[i][0].text):
                    out[i] = o
        # a masked name comes back only by copying: with replace_unk and an attention to copy by
        if (self.decode.names == "source" and self.src_pipe.sp_model is None and self.decode.replace_unk
                and cross_attention(self.model) is not None):
            again = [i for i, line in enumerate(lines) if self._lost_name(line, out[i][0].text)]
            if again:
                for i, o in zip(again, self._translate([lines[i] for i in again], beam, nbest, batch_size, masked=True)):
                    if not self._lost_name(lines[i], o[0].text):  # kept only where it brought the name back
                        out[i] = o
        return out

    def reverse(self) -> Reverse | None:
        """decode.reverse's ja-en model (mt/reverse.py), or None."""
        if self.decode.reverse and self._reverse is None:
            self._reverse = Reverse.load(self.decode.reverse, self.device)
        return self._reverse

    def _first_is_name(self, written: str) -> bool:
        """A sentence's capitalised first word is a name if JMdict has no word for it but JMnedict has it."""
        d = self.dictionary
        return d is not None and d.lookup(written.lower()) is None and bool(d.names(written))

    def _lost_name(self, line: str, text: str) -> bool:
        """Did the translation `text` of `line` lose a name that masking would send through as <unk>?"""
        if not line.strip():
            return False
        tokens = self.source_tokens(line)
        plain = self.src_vocab.encode(tokens)
        masked = self.source_ids(line, masked=True, proxies=False)[0]
        for token, a, b in zip(tokens, plain, masked):
            if a == b:
                continue
            if b != UNK:  # a title the vocabulary lacks, copied as written (Mrs.)
                if (written := written_as(token, line)) and written in text:
                    return True
            elif written := name_in(token, line, self._first_is_name):
                if not any(f in text for f in forms(list(self.dictionary.names(written)) if self.dictionary else [],
                                                    written)):
                    return True
        return False

    def _translate(self, lines: list[str], beam: int | None, nbest: int, batch_size: int | None,
                   masked: bool, proxies: bool = True) -> list[list[Output]]:
        if not lines:
            return []
        sources = [self.source_ids(line, masked, proxies)[0] if line.strip() else [] for line in lines]
        todo = [i for i, s in enumerate(sources) if s or lines[i].strip()]
        reverse = self.reverse() if (beam or self.decode.beam) > 1 else None  # reranks the whole beam
        hyps = self.translate_ids([sources[i] for i in todo], beam, max(nbest, beam or self.decode.beam) if reverse
                                  else nbest, batch_size)
        copies: dict[tuple[int, int], list[str | None]] = {}
        if self.decode.replace_unk:
            pairs = [(i, k, hyp) for i, h in zip(todo, hyps) for k, hyp in enumerate(h)]
            found = replace_unknowns(self.model, [
                (sources[i], self.source_tokens(lines[i]) if UNK in hyp.tokens else [], hyp.tokens)
                for i, _, hyp in pairs], self.device)
            copies = {(i, k): [fill(w, lines[i], self.dictionary, self.tgt_vocab.stoi.get) if w else None for w in f]
                      for (i, k, _), f in zip(pairs, found)}
        out: list[list[Output]] = [[Output("", "", 0.0)] for _ in lines]
        for i, h in zip(todo, hyps):
            out[i] = [self.output(x, copies.get((i, k))) for k, x in enumerate(h)] or [Output("", "", 0.0)]
            if self.decode.numbers == "source":
                out[i] = [replace(o, text=from_source(lines[i], o.text), tokens=from_source(lines[i], o.tokens))
                          for o in out[i]]
        if reverse:
            out = [o[:nbest] for o in reverse.rerank(lines, out, self.decode.reverse_weight)]
        return out


def _number_faults(src: str, text: str) -> int:
    """The numbers a translation gets wrong: the source's it does not say and its own the source does not say."""
    missing, extra = unmatched(src, text)
    return len(missing) + len(extra)


def decoding_weights(model, precision: str, dev: torch.device, quantized: bool, path) -> torch.nn.Module:
    """The model with its float weights in decode.precision: bf16 where the device runs it natively (a CPU
    without native bf16 would emulate it at a fraction of fp32's speed, so it stays fp32; precision_note says so)."""
    if precision == "bf16" and quantized:
        raise MTError(f"{path} is int8-quantized; decode.precision = \"bf16\" applies to float checkpoints")
    return model.to(torch.bfloat16) if use_bf16(precision, dev) else model


def precision_note(translator: Translator) -> str | None:
    """What to tell the user when bf16 decoding was asked for and fp32 runs (a CPU without native bf16)."""
    if translator.decode.precision == "bf16" and translator.precision != "bf16":
        return (f"decode.precision = \"bf16\", but this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native "
                "bf16: decoding in fp32")
    return None


def describe(paths: list[Path], translator: Translator) -> str:
    """What a translator decodes with, for stderr: the checkpoint, or every ensemble member and its weight; then
    bf16 weights, or why bf16 was asked for and fp32 runs (precision_note)."""
    if len(paths) == 1:
        what = str(paths[0])
    else:
        how = "mean of probabilities" if translator.model.combine == "prob" else "mean of log-probabilities"
        what = (f"an ensemble of {len(paths)} ({how}): "
                + ", ".join(f"{p} (weight {w:.2f})" for p, w in zip(paths, translator.model.weights)))
    if any(translator.decode.shortlist):
        what = f"{what}, shortlist {translator.decode.shortlist[0]},{translator.decode.shortlist[1]}"
    if translator.precision == "bf16":
        return f"{what} (bf16 weights)"
    note = precision_note(translator)
    return f"{what}; {note}" if note else what


def _check_shared(path_a: Path, a: Translator, path_b: Path, b: Translator) -> None:
    """Ensemble members need one target vocabulary and tokenization and one source pipeline: one clear error."""
    for what, x, y in (("target vocabularies", a.tgt_vocab.itos, b.tgt_vocab.itos),
                       ("source vocabularies", a.src_vocab.itos, b.src_vocab.itos),
                       ("target tokenizers", a.tgt_pipe.pre, b.tgt_pipe.pre),
                       ("source tokenizers", a.src_pipe.pre, b.src_pipe.pre),
                       ("target sentencepiece models", a.tgt_pipe.sp_model, b.tgt_pipe.sp_model),
                       ("source sentencepiece models", a.src_pipe.sp_model, b.src_pipe.sp_model)):
        if x != y:
            detail = f" ({len(x)} vs {len(y)} entries)" if isinstance(x, list) else ""
            raise MTError(f"cannot ensemble {path_a} and {path_b}: their {what} differ{detail}; "
                          f"ensemble members must share vocabularies and tokenization")


@dataclass(frozen=True)
class LineTranslation:
    """One input line's translation: its n-best Outputs (one, joined, for a line of several pieces), and the
    notes the user should read (a sentence cut into pieces, a truncated line, n-best given for one piece only)."""

    outputs: list[Output]
    notes: list[str]


def translate_lines(translator, lines: list[str], beam: int | None = None, nbest: int = 1,
                    batch_size: int | None = None, split: bool = True) -> list[LineTranslation]:
    """Input lines → their sentences (mt/sentences.py), all decoded together → each line's pieces joined.

    An over-long sentence is cut at clause punctuation (then between words) into pieces that fit, never
    truncated. split=False translates each line whole, truncated past the model's limit with a note (the
    behaviour before sentence splitting); one-sentence lines translate the same either way."""
    limit = translator.source_limit()

    def count(text: str) -> int:
        return len(source_tokens(text, translator.src_pipe, translator.src_vocab))

    clauses = getattr(translator.decode, "clauses", 0)  # CTranslate2's translator has no such setting
    lang = getattr(translator, "lang", "ja")  # the target's: a ja-en model reads Japanese lines
    plans = [plan_line(line, limit, count, split, clauses, "ja" if lang == "en" else "en") for line in lines]
    pieces = [piece for plan in plans for piece in plan.pieces]
    outputs = translator.translate(pieces, beam, nbest, batch_size) if pieces else []
    result, start = [], 0
    for plan in plans:
        result.append(_joined(outputs[start: start + len(plan.pieces)], plan.notes, nbest, plan.openers, lang))
        start += len(plan.pieces)
    return result


def _joined(outputs: list[list[Output]], notes: list[str], nbest: int,
            openers: list[str] | None = None, lang: str = "ja") -> LineTranslation:
    """A line's pieces' n-best lists → the line's: a lone piece's own list, else the pieces' 1-bests joined,
    each after its opener (しかし、 before a "but" clause; Japanese text without spaces, English with one, corpus
    tokens with one; the score is the sum of the pieces')."""
    if len(outputs) <= 1:
        return LineTranslation(outputs[0] if outputs else [Output("", "", 0.0)], notes)
    best = [o[0] for o in outputs]
    openers = openers or [""] * len(best)
    texts = [t for opener, o in zip(openers, best) for t in (opener, o.text) if t]
    tokens = [t for opener, o in zip(openers, best)
              for t in (_opener_tokens(opener), o.tokens) if t]
    joined = Output(detokenize_ja(texts) if lang == "ja" else " ".join(texts), " ".join(tokens),
                    sum(o.score for o in best))
    if nbest > 1:
        notes = [*notes, f"translated as {len(outputs)} sentences or pieces: n-best lists are for a line "
                         f"translated whole; given is one translation, the best of each piece joined"]
    return LineTranslation([joined], notes)


def _opener_tokens(opener: str) -> str:
    """A clause opener (しかし、) as corpus tokens (しかし 、), as every target tokenizer here splits it."""
    return " ".join(re.findall(r"[^、]+|、", opener))


def _read_lines(source: BinaryIO, out: queue.Queue) -> None:
    """Reader thread: raw byte lines into a bounded queue (None = end)."""
    for raw in source:
        out.put(raw)
    out.put(None)


def _decode_input(raw: bytes, lineno: int, warn: Callable[[str], None]) -> str:
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        warn(f"line {lineno}: invalid UTF-8, decoded with replacement characters")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def stream(translator, source: BinaryIO, out: TextIO, beam: int | None = None, nbest: int = 1,
           tokenized: bool = False, batch_size: int | None = None, warn: Callable[[str], None] = print,
           after: Callable[[list[str], list[str]], None] | None = None, split: bool = True) -> None:
    """`mt translate`: lines from `source` → one translation per line on `out`, as they arrive.

    A line is translated as soon as it is read, batched with whatever else is already waiting (up to a
    batch); memory stays flat for any input length (the queue is bounded). Each line is split into sentences
    (translate_lines; split=False: not) and their translations joined. n-best lists are joined by |||.
    `after(sources, best translations)` sees each batch once it is written (mt translate --check)."""
    batch_size = batch_size or translator.decode.batch_size
    lines: queue.Queue = queue.Queue(maxsize=4 * batch_size)
    threading.Thread(target=_read_lines, args=(source, lines), daemon=True).start()
    lineno, ended = 0, False
    while not ended:
        chunk = [lines.get()]  # block for one line, then take what is waiting
        while chunk[-1] is not None and len(chunk) < batch_size:
            try:
                chunk.append(lines.get_nowait())
            except queue.Empty:
                break
        if chunk[-1] is None:
            ended = True
            chunk.pop()
        first = lineno + 1
        texts = [_decode_input(raw, first + k, warn) for k, raw in enumerate(chunk)]
        lineno += len(chunk)
        results = translate_lines(translator, texts, beam, nbest, batch_size, split)
        for k, line in enumerate(results):
            for note in line.notes:
                warn(f"line {first + k}: {note}")
            out.write(" ||| ".join(o.tokens if tokenized else o.text for o in line.outputs) + "\n")
        out.flush()
        if after:
            after(texts, [line.outputs[0].text for line in results])
