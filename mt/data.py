"""Parallel data: tokenize + encode once into a memmap cache, then token-budget batches.

B = batch size, S = source length, T = target length (+1 for BOS/EOS).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from mt.config import DataConfig
from mt.corpora import SPLITS, atomic_folder, cache_root, read_lines
from mt.errors import MTError
from mt.mixing import describe, read_record
from mt.text import Pipeline, train_sentencepiece
from mt.vocab import BOS, EOS, PAD, Vocab

CACHE_VERSION = 2  # bump when tokenization or encoding changes: v2 normalize_en adds missing final marks


@dataclass
class Encoded:
    """One split as flat int32 token ids plus offsets (memory-mapped: larger than RAM is fine)."""

    src: np.ndarray
    src_off: np.ndarray
    tgt: np.ndarray
    tgt_off: np.ndarray

    def __len__(self) -> int:
        return len(self.src_off) - 1

    def src_rows(self) -> list[list[int]]:
        """Each pair's source ids, as lists (what Translator.translate_ids takes)."""
        return [self.src[self.src_off[i]: self.src_off[i + 1]].tolist() for i in range(len(self))]

    @property
    def src_lens(self) -> np.ndarray:
        return np.diff(self.src_off)

    @property
    def tgt_lens(self) -> np.ndarray:
        return np.diff(self.tgt_off)

    @classmethod
    def load(cls, folder: Path, split: str) -> Encoded:
        arrays = {}
        for side in ("src", "tgt"):
            arrays[side] = np.memmap(folder / f"{split}.{side}.ids", dtype=np.int32, mode="r") \
                if (folder / f"{split}.{side}.ids").stat().st_size else np.zeros(0, np.int32)
            arrays[side + "_off"] = np.fromfile(folder / f"{split}.{side}.off", dtype=np.int64)
        return cls(**arrays)


@dataclass
class Prepared:
    """Everything a run needs from the data side: pipelines, vocabularies, encoded splits."""

    src_pipe: Pipeline
    tgt_pipe: Pipeline
    src_vocab: Vocab
    tgt_vocab: Vocab
    folder: Path  # the cache folder
    corpus_dir: Path
    removed: dict | None = None  # a mix's record of the held-out pairs removed from training (mt/mixing.py)

    def split(self, name: str) -> Encoded:
        return Encoded.load(self.folder, name)


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def cache_key(cfg: DataConfig, corpus_dir: Path, vocabs: dict[str, Vocab] | None = None) -> str:
    """Corpus files (path, size, mtime) + every data setting that changes the ids (+ fixed vocabularies)."""
    files = [_stamp(corpus_dir / f"{s}.{side}") for s in SPLITS for side in ("en", "ja")]
    fields = {k: getattr(cfg, k) for k in ("src_tokenizer", "tgt_tokenizer", "subword",
                                           "src_subword_vocab", "tgt_subword_vocab",
                                           "min_count", "max_size", "limit")}
    if cfg.direction != "en-ja":  # (en-ja's keys stay what they were before there was a direction)
        fields["direction"] = cfg.direction
        fields["janome"] = "plain text"  # janome reads a pre-tokenized line as its plain text (text.segment_ja)
    fixed = {s: v.to_json() for s, v in vocabs.items()} if vocabs else None
    blob = json.dumps({"v": CACHE_VERSION, "files": files, "cfg": fields, **({"vocabs": fixed} if fixed else {})},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _pairs(corpus_dir: Path, split: str, limit: int = 0, langs: tuple[str, str] = ("en", "ja")):
    """(source, target) lines of a split, in the direction `langs` names."""
    src = read_lines(corpus_dir / f"{split}.{langs[0]}")
    tgt = read_lines(corpus_dir / f"{split}.{langs[1]}")
    pairs = zip(src, tgt)
    return islice(pairs, limit) if limit else pairs


def prepare(cfg: DataConfig, corpus_dir: Path, log=print, vocabs: dict[str, Vocab] | None = None) -> Prepared:
    """Build (or reuse from cache) sentencepiece models, vocabularies and encoded splits. `vocabs`
    ({"src": …, "tgt": …}) encodes the corpus with a trained model's vocabularies instead (word level)."""
    if vocabs and cfg.subword != "none":
        raise MTError("a corpus can be encoded with a model's fixed vocabularies only at word level (data.subword = \"none\")")
    cfg = cfg.resolved(None)  # the English side's `auto`; the Japanese side's needs the corpus (trainer._load_data)
    folder = cache_root() / "encoded" / cache_key(cfg, corpus_dir, vocabs)
    if not (folder / "DONE").exists():
        log(f"preparing data into {folder}")
        with atomic_folder(folder) as tmp:
            _prepare_into(cfg, corpus_dir, tmp, vocabs)
            (tmp / "DONE").write_text("ok")
    prep = load_prepared(folder, cfg, corpus_dir)
    if prep.removed:
        log(describe(prep.removed))
    return prep


def load_prepared(folder: Path, cfg: DataConfig, corpus_dir: Path) -> Prepared:
    def sp(side: str) -> bytes | None:
        path = folder / f"{side}.sp.model"
        return path.read_bytes() if path.exists() else None

    vocabs = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    return Prepared(Pipeline(cfg.src_tokenizer, sp("src")), Pipeline(cfg.tgt_tokenizer, sp("tgt")),
                    Vocab.from_json(vocabs["src"]), Vocab.from_json(vocabs["tgt"]),
                    folder, corpus_dir, read_record(corpus_dir))


def _prepare_into(cfg: DataConfig, corpus_dir: Path, out: Path, fixed: dict[str, Vocab] | None = None) -> None:
    pipes = {}
    langs = cfg.langs
    for side, pre, lang, size in (("src", cfg.src_tokenizer, langs[0], cfg.src_subword_vocab),
                                  ("tgt", cfg.tgt_tokenizer, langs[1], cfg.tgt_subword_vocab)):
        model = None
        if cfg.subword != "none":
            lines = (p[0 if side == "src" else 1] for p in _pairs(corpus_dir, "train", cfg.limit, langs))
            model = train_sentencepiece(lines, pre, size, cfg.subword,
                                        1.0 if lang == "en" else 0.9995)
            (out / f"{side}.sp.model").write_bytes(model)
        pipes[side] = Pipeline(pre, model)
    if fixed:
        vocabs = dict(fixed)
    else:
        counts = {"src": Counter(), "tgt": Counter()}
        for src, tgt in _pairs(corpus_dir, "train", cfg.limit, langs):
            counts["src"].update(pipes["src"].tokenize(src))
            counts["tgt"].update(pipes["tgt"].tokenize(tgt))
        min_count = 1 if cfg.subword != "none" else cfg.min_count
        vocabs = {s: Vocab.build(counts[s], min_count, cfg.max_size) for s in counts}
    (out / "vocab.json").write_text(json.dumps({s: v.to_json() for s, v in vocabs.items()},
                                               ensure_ascii=False), encoding="utf-8")
    for split in SPLITS:
        _encode_split(_pairs(corpus_dir, split, cfg.limit if split == "train" else 0, langs),
                      pipes, vocabs, out, split)


def _encode_split(pairs, pipes: dict, vocabs: dict, out: Path, split: str,
                  chunk: int = 50_000) -> None:
    """Stream pairs into {split}.{src,tgt}.ids/.off without holding the split in memory."""
    files = {s: open(out / f"{split}.{s}.ids", "wb") for s in ("src", "tgt")}
    offsets = {s: [0] for s in ("src", "tgt")}
    buffers = {s: [] for s in ("src", "tgt")}
    try:
        for n, (src, tgt) in enumerate(pairs, 1):
            for side, text in (("src", src), ("tgt", tgt)):
                ids = vocabs[side].encode(pipes[side].tokenize(text))
                buffers[side].extend(ids)
                offsets[side].append(offsets[side][-1] + len(ids))
            if n % chunk == 0:
                for s in files:
                    np.asarray(buffers[s], dtype=np.int32).tofile(files[s])
                    buffers[s].clear()
        for s in files:
            np.asarray(buffers[s], dtype=np.int32).tofile(files[s])
            np.asarray(offsets[s], dtype=np.int64).tofile(out / f"{split}.{s}.off")
    finally:
        for f in files.values():
            f.close()


def make_batches(src_lens: np.ndarray, tgt_lens: np.ndarray, batch_tokens: int,
                 seed: int = 0, epoch: int = 0, shuffle: bool = True,
                 max_len: int = 0) -> list[np.ndarray]:
    """Token-budget batches of similar-length pairs; deterministic for (seed, epoch).

    Cost of a batch = size × longest side (+1 for BOS/EOS): the padded tokens it holds.
    """
    n = len(src_lens)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    keep = (src_lens[order] > 0) & (tgt_lens[order] > 0)
    if max_len:
        keep &= (src_lens[order] <= max_len) & (tgt_lens[order] <= max_len)
    order = order[keep]
    # stable sort by (target, source) length: ties stay in the random order above
    order = order[np.lexsort((src_lens[order], tgt_lens[order]))]
    longest = np.maximum(src_lens[order], tgt_lens[order]) + 1
    batches, start, cur = [], 0, 0
    for i, length in enumerate(longest.tolist()):
        peak = max(cur, length)
        if i > start and (i - start + 1) * peak > batch_tokens:
            batches.append(order[start:i])
            start, peak = i, length
        cur = peak
    if start < len(order):
        batches.append(order[start:])
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


@dataclass
class Batch:
    """Padded tensors for one batch; tgt_in starts with BOS, tgt_out ends with EOS."""

    src: torch.Tensor  # (B, S)
    src_len: torch.Tensor  # (B,)
    tgt_in: torch.Tensor  # (B, T)
    tgt_out: torch.Tensor  # (B, T)
    n_tokens: int  # real target tokens (EOS included)

    def to(self, device: torch.device) -> Batch:
        return Batch(self.src.to(device), self.src_len.to(device), self.tgt_in.to(device),
                     self.tgt_out.to(device), self.n_tokens)

    def split(self, parts: int) -> list[Batch]:
        """Up to `parts` row chunks, each cut to its own longest source and target (micro-batches)."""
        if parts <= 1 or len(self.src_len) < 2:
            return [self]
        out = []
        for rows in torch.arange(len(self.src_len)).tensor_split(parts):
            if len(rows) == 0:
                continue
            tgt_out = self.tgt_out[rows]
            real = tgt_out != PAD
            S, T = int(self.src_len[rows].max()), int(real.sum(1).max())
            out.append(Batch(self.src[rows, :S].contiguous(), self.src_len[rows], self.tgt_in[rows, :T].contiguous(),
                             tgt_out[:, :T].contiguous(), int(real.sum())))
        return out


def pad_sources(seqs: list[np.ndarray] | list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Append EOS to each source and right-pad: (B, S) ids and (B,) lengths."""
    lens = [len(s) + 1 for s in seqs]
    src = torch.full((len(seqs), max(lens)), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        src[i, : lens[i] - 1] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        src[i, lens[i] - 1] = EOS
    return src, torch.tensor(lens, dtype=torch.long)


def pad_targets(seqs: list[np.ndarray] | list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing's two sides, right-padded: (B, T) decoder input BOS + target and (B, T) gold target + EOS."""
    T = max(len(t) for t in seqs) + 1
    tgt_in = torch.full((len(seqs), T), PAD, dtype=torch.long)
    tgt_out = torch.full((len(seqs), T), PAD, dtype=torch.long)
    for i, t in enumerate(seqs):
        t = torch.as_tensor(np.asarray(t, dtype=np.int64))
        tgt_in[i, 0] = BOS
        tgt_in[i, 1: len(t) + 1] = t
        tgt_out[i, : len(t)] = t
        tgt_out[i, len(t)] = EOS
    return tgt_in, tgt_out


def collate(data: Encoded, indices: np.ndarray) -> Batch:
    """Gather pairs by index into a padded Batch."""
    srcs = [data.src[data.src_off[i]: data.src_off[i + 1]] for i in indices]
    tgts = [data.tgt[data.tgt_off[i]: data.tgt_off[i + 1]] for i in indices]
    src, src_len = pad_sources(srcs)
    tgt_in, tgt_out = pad_targets(tgts)
    return Batch(src, src_len, tgt_in, tgt_out, sum(len(t) + 1 for t in tgts))
