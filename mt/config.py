"""Frozen dataclass configs read from TOML; every default lives here once.

Sections: [data], [model] (a family's own dataclass, chosen by `type`), [train], [decode].
Unknown keys and ill-typed values are errors that name the key and the valid ones.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mt.corpora import check_names
from mt.errors import MTError
from mt.model_config import config_class  # torch-free: a config is checked before torch loads


@dataclass(frozen=True)
class DataConfig:
    """Which corpus, how each side is tokenized, how the vocabularies are built."""

    corpus: str = "small_parallel_enja"  # a name, folder or TSV file; "a+b" trains on both (mt/mixing.py)
    exclude: tuple[str, ...] = ()  # corpora whose dev/test English is removed from training, besides the members'
    direction: Literal["en-ja", "ja-en"] = "en-ja"  # ja-en: Japanese → English (a reverse model: mt/reverse.py)
    # the source's and the target's tokenizers; English: en, the normalizer (idempotent on pre-tokenized English), or
    # space; Japanese: space, janome or none (sentencepiece alone). auto: en for English; for a Japanese target, space
    # if the corpus is tokenized, else janome; for a Japanese source, janome (a ja-en model reads raw Japanese)
    src_tokenizer: Literal["auto", "en", "space", "janome", "none"] = "auto"
    tgt_tokenizer: Literal["auto", "en", "space", "janome", "none"] = "auto"
    subword: Literal["none", "unigram", "bpe"] = "none"  # sentencepiece, trained on the train split
    src_subword_vocab: int = 8000
    tgt_subword_vocab: int = 8000
    min_count: int = 2
    max_size: int = 0  # 0 = no limit
    max_len: int = 60  # training pairs longer than this (tokens, either side) are dropped
    limit: int = 0  # use only the first N training pairs (0 = all)

    def __post_init__(self) -> None:
        for side, lang in zip(("src", "tgt"), self.langs):
            kind = getattr(self, f"{side}_tokenizer")
            valid = _TOKENIZERS[lang]
            if kind not in valid:
                raise MTError(f"config data.{side}_tokenizer = {kind!r} does not read {_LANGUAGE[lang]} (the "
                              f"{'source' if side == 'src' else 'target'} of {self.direction}); valid: {', '.join(valid)}")
            if kind == "none" and self.subword == "none":
                raise MTError(f"config data.{side}_tokenizer = 'none' needs data.subword = 'unigram' or 'bpe'")
        check_names(self.corpus, self.exclude)

    @property
    def langs(self) -> tuple[str, str]:
        """The source's and the target's language: ("en", "ja") or ("ja", "en")."""
        src, _, tgt = self.direction.partition("-")
        return src, tgt

    def resolved(self, tokenized: bool | None) -> DataConfig:
        """`auto` tokenizers made concrete for a corpus: en for English; for a Japanese target, space if the corpus
        is pre-tokenized, else janome (`tokenized` None: it stays auto); for a Japanese source, janome."""
        auto = {"en": "en", "ja": "auto" if tokenized is None else "space" if tokenized else "janome"}
        src, tgt = auto[self.langs[0]] if self.langs[0] == "en" else "janome", auto[self.langs[1]]
        return dataclasses.replace(self, src_tokenizer=src if self.src_tokenizer == "auto" else self.src_tokenizer,
                                   tgt_tokenizer=tgt if self.tgt_tokenizer == "auto" else self.tgt_tokenizer)

    @property
    def japanese_tokenizer(self) -> str:
        """The Japanese side's tokenizer, whichever side it is."""
        return self.tgt_tokenizer if self.langs[1] == "ja" else self.src_tokenizer


_TOKENIZERS = {"en": ("auto", "en", "space"), "ja": ("auto", "space", "janome", "none")}
_LANGUAGE = {"en": "English", "ja": "Japanese"}


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule, batching, stopping and checkpointing."""

    epochs: int = 30
    batch_tokens: int = 4096
    micro_batches: int = 1  # forward/backward each batch in this many row chunks: same update, less memory
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-9
    weight_decay: float = 0.0
    schedule: Literal["inverse_sqrt", "cosine", "constant", "plateau"] = "inverse_sqrt"
    warmup_steps: int = 1000
    decay_steps: int = 0  # cosine: lr reaches 0 here (0 = epochs × steps per epoch, re-planned on resume)
    decay_factor: float = 0.5  # plateau: lr × this when dev BLEU has not improved for decay_patience epochs
    decay_patience: int = 1  # plateau: epochs without a dev BLEU gain before each decay
    label_smoothing: float = 0.1
    clip_grad: float = 1.0  # max gradient norm; 0 = off
    patience: int = 0  # epochs without dev BLEU gain before stopping; 0 = never stop early
    average_last: int = 0  # after training, average the last k epoch checkpoints into `averaged`
    keep_epochs: int = 5  # epoch checkpoints kept on disk (for averaging)
    seed: int = 42
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA devices that support it, else fp32
    save_every_steps: int = 0  # also save `last` every N steps mid-epoch (0 = epoch ends only)
    dev_beam: int = 1  # beam used to decode dev for BLEU each epoch
    max_minutes: float = 0.0  # stop after this much training time (0 = no limit)
    threads: int = 0  # torch intra-op threads (0 = torch's default)
    compile: bool = False  # torch.compile the model for training steps (inductor; dynamic shapes)
    kernel_cache: int = 16  # CPU bf16: shapes kept in ideep/oneDNN kernel caches (0 = libraries default, 1024; mt/memory.py)
    trim_memory_every: int = 0  # return freed heap to the OS every N steps (glibc malloc_trim): lower RSS, slower
    tensorboard: bool = True  # also write TensorBoard event files (needs mt-enja[tensorboard]; mt/tracking.py)

    def __post_init__(self) -> None:
        if self.schedule == "plateau" and not (0 < self.decay_factor <= 1 and self.decay_patience >= 1):
            raise MTError(f"config train.decay_factor must be in (0, 1] and train.decay_patience ≥ 1 for the plateau "
                          f"schedule, got {self.decay_factor} and {self.decay_patience}")


@dataclass(frozen=True)
class DecodeConfig:
    """Search settings for translate/evaluate."""

    beam: int = 5
    length_penalty: Literal["wu", "length"] = "wu"  # wu: ((5+len)/6)^alpha (Wu et al. 2016); length: len^alpha
    alpha: float = 0.6
    max_len_a: float = 1.5  # max output length = a * source length + b
    max_len_b: int = 10
    batch_size: int = 256  # sentences per decoding batch (256 vs 64, beam 5: +5–27 % in fp32, more in bf16; docs/speed.md)
    max_src_len: int = 200  # longer sentences are cut into pieces (mt/sentences.py); whole lines (--no-split) truncated
    replace_unk: bool = True  # an output <unk> copies the source word it attends to most (mt/unk.py)
    dictionary: Literal["none", "jmdict"] = "none"  # jmdict: a copied word is looked up in JMdict (mt/lexicon.py)
    coverage: float = 0.0  # β > 0: the beam's n-best reranked by a coverage penalty (mt/coverage.py)
    numbers: Literal["model", "source"] = "model"  # source: an output number that says otherwise is the source's (mt/renumber.py)
    names: Literal["model", "source"] = "model"  # source: rare names reach the model as <unk> and are copied back (mt/names.py)
    precision: Literal["fp32", "bf16"] = "fp32"  # weights for decoding; bf16 where native (a CPU without it: fp32, noted)
    clauses: int = 0  # > 0: a sentence of more words than this is translated clause by clause at ", but/so/and" (mt/sentences.py)
    reverse: str = ""  # a ja-en run (or checkpoint): the beam reranked by how well each translation gives the source back
    reverse_weight: float = 1.0  # λ of that reranking (mt/reverse.py): beam score + λ · reverse log-prob per source token
    # > 0: a sentence's beam also ends once ⌈patience · beam⌉ hypotheses have finished (fairseq's and CTranslate2's
    # rule: fewer steps, not exact); 0: only when no live hypothesis can beat the finished ones (mt/search.py)
    patience: float = 0.0
    # (first, best) ≠ (0, 0): decode over a target-vocabulary shortlist, the `first` most frequent target words and
    # each source word's `best` likeliest translations (mt/shortlist.py; Marian's shortlist, CTranslate2's vmap)
    shortlist: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if not self.coverage >= 0:
            raise MTError(f"config decode.coverage must be ≥ 0 (0: off), got {self.coverage}")
        if self.clauses < 0:
            raise MTError(f"config decode.clauses must be ≥ 0 (0: off), got {self.clauses}")
        if not self.reverse_weight >= 0:
            raise MTError(f"config decode.reverse_weight must be ≥ 0, got {self.reverse_weight}")
        if not self.patience >= 0:
            raise MTError(f"config decode.patience must be ≥ 0 (0: exact stopping), got {self.patience}")
        if min(self.shortlist) < 0:
            raise MTError(f"config decode.shortlist must be two counts ≥ 0 [first, best] ([0, 0]: off), got "
                          f"{list(self.shortlist)}")


@dataclass(frozen=True)
class Config:
    """A whole run's configuration."""

    model_type: str
    model: Any  # the family's own frozen dataclass (mt/model_config.py: RNNConfig, TransformerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict:
        """Plain dict (TOML/JSON friendly), `type` stored inside [model]."""
        out = {
            name: dataclasses.asdict(getattr(self, name))
            for name in ("data", "model", "train", "decode")
        }
        out["model"] = {"type": self.model_type, **out["model"]}
        return out


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check/convert one TOML value to a dataclass field's type."""
    origin = typing.get_origin(typ)
    if origin is tuple and typing.get_args(typ)[1:] == (Ellipsis,):
        if not isinstance(value, (list, tuple)):
            raise MTError(f"config {where}: expected a list, got {value!r}")
        return tuple(_coerce(v, typing.get_args(typ)[0], where) for v in value)
    if origin is tuple:
        args = typing.get_args(typ)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise MTError(f"config {where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args))
    if origin is Literal:
        if value not in typing.get_args(typ):
            raise MTError(f"config {where}: {value!r} is not a valid value; valid: "
                          f"{', '.join(str(a) for a in typing.get_args(typ))}")
        return value
    if origin in (typing.Union, types.UnionType):
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise MTError(f"config {where}: expected true/false, got {value!r}")
        return value
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ in (int, str) and isinstance(value, typ) and not isinstance(value, bool):
        return value
    raise MTError(f"config {where}: expected {typ.__name__}, got {value!r}")


def from_dict(cls: type, values: dict, section: str) -> Any:
    """Build a frozen dataclass from a dict, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise MTError(
            f"config [{section}]: unknown key {unknown[0]!r}; valid keys: {', '.join(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def parse_override(text: str) -> tuple[str, str, Any]:
    """'train.lr=3e-4' -> ('train', 'lr', 0.0003); values parse as TOML, else as strings."""
    key, sep, raw = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not name:
        raise MTError(f"--set {text!r}: expected section.key=value, e.g. train.lr=3e-4")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, name, value


def read_toml(path: Path) -> dict:
    """Read a TOML file with errors that name the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise MTError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise MTError(f"{path}: invalid TOML: {e}") from None


def build(raw: dict, overrides: list[str] = (), model_type: str | None = None) -> Config:
    """Validate a raw dict (from TOML) plus --set overrides into a Config."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for text in overrides:
        section, name, value = parse_override(text)
        raw.setdefault(section, {})[name] = value
    sections = {"data", "model", "train", "decode"}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise MTError(f"config: unknown section [{unknown[0]}]; valid: {', '.join(sorted(sections))}")
    model_raw = dict(raw.get("model", {}))
    kind = model_type or model_raw.get("type", "transformer")
    model_raw.pop("type", None)
    return Config(
        model_type=kind,
        model=from_dict(config_class(kind), model_raw, "model"),
        data=from_dict(DataConfig, raw.get("data", {}), "data"),
        train=from_dict(TrainConfig, raw.get("train", {}), "train"),
        decode=from_dict(DecodeConfig, raw.get("decode", {}), "decode"),
    )


def load(model: str | None = None, path: str | Path | None = None, sets: Sequence[str] = (),
         flags: dict[str, Any] | None = None, base: dict | None = None) -> Config:
    """The one config loader (train, bench, distill): experiments/<model>.toml or `path`, then `flags`, then --set.

    `flags` maps "section.key" to a value given by its own command-line flag (None = not given);
    `base` gives sections that the file's own values extend (distill: the teacher's [data])."""
    file = Path(path) if path else Path("experiments") / f"{model or 'transformer'}.toml"
    raw = read_toml(file) if (path or file.exists()) else {}
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for section, values in (base or {}).items():
        raw[section] = {**values, **raw.get(section, {})}
    kind = raw.get("model", {}).get("type", model or "transformer")
    if model and kind != model:
        raise MTError(f"--model {model} but {file} configures a {kind}")
    raw.setdefault("model", {})["type"] = kind
    for key, value in (flags or {}).items():
        if value is not None:
            section, name = key.split(".")
            raw.setdefault(section, {})[name] = value
    return build(raw, sets)


def to_toml(cfg: Config) -> str:
    """Serialise a Config as TOML (what each run saves as config.toml)."""
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)
