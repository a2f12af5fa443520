"""Sequence-level knowledge distillation (Kim & Rush 2016, §3.2).

The frozen teacher translates its own training sources with beam search; the student is an
ordinary run trained on (source, teacher output) pairs. The generated corpus is a folder of
{train,dev,test}.{en,ja} in the cache (dev/test copied from the original corpus, so the
student's dev BLEU and test scores are against real references), reused if asked again.
Word-level KD (matching the teacher's distributions) is not implemented.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path

from mt import checkpoint as ckpt
from mt import config as config_mod
from mt import corpora, experiments, trainer
from mt.config import Config
from mt.errors import MTError
from mt.model import count_parameters
from mt.translate import Translator


def distilled_corpus(teacher_ckpt: Path, beam: int | None, limit: int, device: str = "cpu",
                     log: Callable[[str], None] = print, chunk: int = 1000) -> Path:
    """Translate the teacher's training sources into a new corpus folder (cached); returns it."""
    st = teacher_ckpt.stat()
    key = f"{teacher_ckpt.resolve()}:{st.st_size}:{st.st_mtime_ns}:{beam}:{limit}"
    folder = corpora.cache_root() / "distilled" / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (folder / "DONE").exists():
        log(f"reusing distilled corpus {folder}")
        return folder
    translator = Translator.from_checkpoint(teacher_ckpt, device)
    translator.decode = replace(translator.decode, replace_unk=False)  # the student learns the teacher's <unk>
    for p in translator.model.parameters():
        p.requires_grad_(False)  # frozen: translate_ids also runs under no_grad, in eval mode
    teacher_cfg = config_mod.build(ckpt.read_meta(teacher_ckpt)["config"])
    corpus_dir, tokenized = corpora.resolve(teacher_cfg.data.corpus, exclude=teacher_cfg.data.exclude)
    sources = list(islice(corpora.read_lines(corpus_dir / "train.en"), limit or None))
    beam = beam or translator.decode.beam
    with corpora.atomic_folder(folder) as tmp:
        with (open(tmp / "train.en", "w", encoding="utf-8") as f_en,
              open(tmp / "train.ja", "w", encoding="utf-8") as f_ja):
            for start in range(0, len(sources), chunk):
                lines = sources[start: start + chunk]
                for src, outs in zip(lines, translator.translate(lines, beam=beam), strict=True):
                    hyp = outs[0].tokens if tokenized else outs[0].text
                    f_en.write(src + "\n")
                    f_ja.write(" ".join(hyp.split()) + "\n")  # one line, whatever the detokenizer did
                log(f"teacher (beam {beam}): {min(start + chunk, len(sources))}/{len(sources)} sentences")
        for split in ("dev", "test"):
            for side in corpora.SIDES:
                shutil.copyfile(corpus_dir / f"{split}.{side}", tmp / f"{split}.{side}")
        if tokenized:
            (tmp / "TOKENIZED").write_text("teacher outputs in the corpus's own tokens\n")
        info = {"teacher": str(teacher_ckpt), "beam": beam, "limit": limit, "source_corpus": str(corpus_dir)}
        (tmp / "distill.json").write_text(json.dumps(info, indent=1))
        (tmp / "DONE").write_text("ok")
    return folder


def student_config(teacher_cfg: Config, model_type: str, config_path: Path | None, sets: Sequence[str],
                   corpus: Path, epochs: int | None) -> Config:
    """The student's Config: its own [model]/[train]/[decode]; [data] as the teacher's unless set."""
    cfg = config_mod.load(model_type, config_path, sets, {"train.epochs": epochs},
                          base={"data": teacher_cfg.to_dict()["data"]})
    return replace(cfg, data=replace(cfg.data, corpus=str(corpus), limit=0))


def distill(teacher_run: Path, model_type: str, config_path: Path | None = None, sets: Sequence[str] = (),
            name: str | None = None, limit: int = 0, epochs: int | None = None, beam: int | None = None,
            device: str = "cpu", log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """Teacher run → distilled corpus → student run trained on it; returns (run folder, summary)."""
    teacher_ckpt = experiments.best_checkpoint(teacher_run)
    teacher, teacher_cfg = ckpt.model_from_meta(ckpt.read_meta(teacher_ckpt))
    run = experiments.runs_root() / (name or f"{model_type}-distilled-{teacher_run.name}")
    if run.exists():  # checked before the teacher decodes for minutes; the trainer's claim is the atomic check
        raise MTError(f"run {run} already exists: pick another --name")
    corpus = distilled_corpus(teacher_ckpt, beam, limit, device, log)
    cfg = student_config(teacher_cfg, model_type, config_path, sets, corpus, epochs)
    info = {"teacher_run": str(teacher_run), "teacher_checkpoint": str(teacher_ckpt),
            "teacher_params": count_parameters(teacher), "corpus": str(corpus),
            **json.loads((corpus / "distill.json").read_text())}
    return run, trainer.train(cfg, run, device, log=log, run_files={"distill.json": json.dumps(info, indent=1)})
