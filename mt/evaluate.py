"""`mt evaluate`: translate a test set and score it the way Japanese should be scored."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mt import check_model, checks, config, corpora, experiments, files, metrics
from mt import checkpoint as ckpt
from mt.errors import MTError
from mt.translate import Output, Translator, translate_lines


@dataclass(frozen=True)
class EvalSet:
    """Source and reference files to score on, and the name the outputs are written under."""

    src: Path
    ref: Path
    ref_tokenized: bool
    name: str


def eval_set(checkpoint: Path, split: str = "test", src: str | None = None, ref: str | None = None,
             ref_tokenized: bool = False, corpus: str | None = None) -> EvalSet:
    """`--src/--ref` files, else a split of `corpus` (written under <corpus>-<split>), else of the checkpoint's own
    corpus. A model that does not write the corpus's own tokens (trained on raw text) is scored on plain text."""
    if src or ref:
        if not (src and ref):
            raise MTError("--src and --ref go together")
        for p in (src, ref):
            if not Path(p).is_file():
                raise MTError(f"file not found: {p}")
        return EvalSet(Path(src), Path(ref), ref_tokenized, Path(src).stem)
    meta = ckpt.read_meta(checkpoint)
    cfg = config.build(meta["config"])
    folder, tokenized = corpora.resolve(corpus or cfg.data.corpus, exclude=() if corpus else cfg.data.exclude,
                                        training=False)
    name = split_name(split, corpus)
    japanese = folder / f"{split}.ja"
    if tokenized and cfg.data.resolved(meta.get("corpus_tokenized", True)).japanese_tokenizer != "space":
        japanese, tokenized = corpora.raw_reference(folder, split), False  # a model of raw Japanese reads/writes it so
    if cfg.data.direction == "ja-en":
        return EvalSet(japanese, folder / f"{split}.en", tokenized, name)
    return EvalSet(folder / f"{split}.en", japanese, tokenized, name)


def split_name(split: str, corpus: str | None = None) -> str:
    """What a split's outputs are named: `test`, or `everyday-test` for a split of another corpus (--corpus)."""
    return f"{Path(corpus).name}-{split}" if corpus else split


def evaluate_checkpoint(path: Path, test: EvalSet, device: str = "cpu", alpha: float | None = None,
                        keep_unk: bool = False, beam: int | None = None, derived: bool = False) -> dict:
    """`mt evaluate`: load, translate, score; outputs next to the checkpoint. A `derived` checkpoint (pruned,
    int8, …, named by --checkpoint) writes under its own name so it never overwrites its run's scores."""
    translator = Translator.from_checkpoint(path, device, alpha=alpha, keep_unk=keep_unk)
    out_dir, name = output_place([path], test, derived)
    checker = check_model.for_translator(translator, path, dropped=True) if translator.lang == "ja" else None
    return evaluate(translator, test.src, test.ref, test.ref_tokenized, out_dir, name, beam, checker)


def output_place(paths: list[Path], test: EvalSet, derived: bool = False, weights: list[float] | None = None,
                 combine: str = "prob", name: str | None = None) -> tuple[Path, str]:
    """Where `mt evaluate` writes: one model next to its checkpoint (a `derived` one, named by --checkpoint, under
    its own name); an ensemble in its own run folder, `name` or ensemble-<A>+<B>, with its members and weights."""
    if len(paths) == 1:
        if name:
            raise MTError("--name names an ensemble's run folder; one model's outputs go next to its checkpoint")
        return paths[0].parent, f"{test.name}.{paths[0].stem}" if derived else test.name
    names = [p.parent.name if p.stem == "final" else f"{p.parent.name}.{p.stem}" for p in paths]
    if name and (Path(name).name != name or name.startswith(".")):
        raise MTError(f"--name must be a plain folder name, got {name!r}")
    folder = experiments.runs_root() / (name or "ensemble-" + "+".join(names))
    if name and (folder / "config.toml").exists() and not (folder / "ensemble.json").exists():
        raise MTError(f"--name {name}: {folder} is a training run; choose another name for the ensemble")
    members = {"members": [str(p) for p in paths], "weights": weights or [1.0] * len(paths), "combine": combine}
    files.write_text(folder / "ensemble.json", json.dumps(members, indent=1))
    files.write_text(folder / "config.toml", config.to_toml(config.build(ckpt.read_meta(paths[0])["config"])))
    return folder, test.name


def evaluate_run(split: str, device: str = "cpu", corpus: str | None = None) -> Callable[[Path], None]:
    """`mt compare --evaluate`: a function that evaluates a run's final checkpoint on `split` (of `corpus`)."""
    def run(folder: Path) -> None:
        path = experiments.best_checkpoint(folder)
        evaluate_checkpoint(path, eval_set(path, split, corpus=corpus), device)
    return run


@dataclass(frozen=True)
class Pairs:
    """An eval set in memory: sources (raw lines; or the token ids of an encoded set, the trainer's dev) and
    their references (`ref_tokenized`: in corpus tokens)."""

    sources: list[str] | list[list[int]]
    refs: list[str]
    ref_tokenized: bool
    lang: str = "ja"  # the references' language (en: a ja-en model's)


@dataclass(frozen=True)
class Scored:
    """An eval set decoded and scored."""

    outputs: list[Output]  # the best translation of each source
    refs_detok: list[str]  # the references as ja BLEU and chrF see them (detokenized)
    scores: dict  # bleu_tok (tokenized references), bleu_ja, chrf: each with its <key>_signature
    bleu: float  # the BLEU that ranks systems: corpus tokens for tokenized references, else ja (English: bleu_en)
    bleu_signature: str


def read_pairs(src_path: Path, ref_path: Path, ref_tokenized: bool, lang: str = "ja") -> Pairs:
    """Source and reference files → Pairs; one clear error if they do not pair up."""
    sources = list(corpora.read_lines(src_path))
    refs = list(corpora.read_lines(ref_path))
    if len(sources) != len(refs):
        raise MTError(f"line counts differ: {src_path} has {len(sources)}, {ref_path} has {len(refs)}")
    if not sources:
        raise MTError(f"empty test set: {src_path}")
    return Pairs(sources, refs, ref_tokenized, lang)


def decode_and_score(translator: Translator, pairs: Pairs, beam: int | None = None, every: bool = True) -> Scored:
    """Decode `pairs` with `translator` (ours, or mt.tools.export_ct2.CT2Translator: the same `translate`)
    and score the outputs: corpus-token BLEU for tokenized references, ja BLEU (`every`, else only where it
    is the headline BLEU), chrF. Raw lines go through `translate_lines` (split into sentences, tokenized,
    unknown words replaced, joined: what `mt translate` prints); ids are decoded as they are."""
    if pairs.sources and not isinstance(pairs.sources[0], str):
        outputs = [translator.output(h[0]) for h in translator.translate_ids(pairs.sources, beam=beam)]
    else:  # as `mt translate` does: each line split into sentences, their translations joined
        outputs = [line.outputs[0] for line in translate_lines(translator, pairs.sources, beam)]
    return score(outputs, pairs.refs, pairs.ref_tokenized, every, pairs.lang)


def score(outputs: list[Output], refs: list[str], ref_tokenized: bool, every: bool = True,
          lang: str = "ja") -> Scored:
    """Outputs against references, as `decode_and_score` scores them."""
    detok = metrics.detokenized(refs, ref_tokenized, lang)
    texts = [o.text for o in outputs]
    if ref_tokenized and lang == "ja":
        scores = metrics.score_all(texts, detok, [o.tokens for o in outputs], refs, ja=every)
    else:
        scores = metrics.score_all(texts, detok, lang=lang)
    headline = "bleu_en" if lang == "en" else "bleu_tok" if ref_tokenized else "bleu_ja"
    return Scored(outputs, detok, scores, scores[headline], scores[f"{headline}_signature"])


def bleu_signature(ref_tokenized: bool, lang: str = "ja") -> str:
    """The signature of the headline BLEU `decode_and_score` gives (what a run's info.json records)."""
    return score([Output("a", "a", 0.0)], ["a"], ref_tokenized, every=False, lang=lang).bleu_signature


def evaluate(translator: Translator, src_path: Path, ref_path: Path, ref_tokenized: bool,
             out_dir: Path, name: str, beam: int | None = None, checker: checks.Checker | None = None) -> dict:
    """Translate src, score against ref, write hyps-<name>.txt (+ .tok.txt) and eval-<name>.json; with a
    `checker`, the lines each `mt check` flag fires on go in as "checks"."""
    pairs = read_pairs(src_path, ref_path, ref_tokenized, getattr(translator, "lang", "ja"))
    scored = decode_and_score(translator, pairs, beam)
    scores = {"beam": beam or translator.decode.beam, "alpha": translator.decode.alpha, "src": str(src_path),
              "ref": str(ref_path), **scored.scores}
    if checker:
        hyps = [o.text for o in scored.outputs]
        scores["checks"] = checks.totals(checks.check_lines(pairs.sources, hyps, checker), checker.checked())
    files.write_text(out_dir / f"hyps-{name}.txt", "".join(o.text + "\n" for o in scored.outputs))
    if ref_tokenized and getattr(translator, "lang", "ja") == "ja":
        files.write_text(out_dir / f"hyps-{name}.tok.txt", "".join(o.tokens + "\n" for o in scored.outputs))
        files.write_text(out_dir / f"refs-{name}.detok.txt", "".join(r + "\n" for r in scored.refs_detok))
    files.write_text(out_dir / f"eval-{name}.json", json.dumps(scores, indent=1, ensure_ascii=False))
    return scores


def format_scores(scores: dict) -> str:
    lines = []
    if "bleu_tok" in scores:
        lines.append(f"BLEU (corpus tokens) {scores['bleu_tok']:6.2f}  {scores['bleu_tok_signature']}")
    if "bleu_ja" in scores:
        lines.append(f"BLEU (ja-mecab)      {scores['bleu_ja']:6.2f}  {scores['bleu_ja_signature']}")
    if "bleu_en" in scores:
        lines.append(f"BLEU (English)       {scores['bleu_en']:6.2f}  {scores['bleu_en_signature']}")
    lines.append(f"chrF                 {scores['chrf']:6.2f}  {scores['chrf_signature']}")
    if "checks" in scores:
        lines.append(f"checks (lines)       {checks.format_totals(scores['checks'])}")
    return "\n".join(lines)
