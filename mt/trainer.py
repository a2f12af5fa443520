"""One trainer for both model families.

train(): claim the run folder → set up → fit() → finish.
fit(): for each epoch: train, evaluate, update the run state, save, decide to stop.
Resume is exact: epoch, position inside the epoch, step, optimiser, RNG, best BLEU, patience.
Data-parallel under torchrun (DDP; gloo on CPU, nccl on GPU): only rank 0 claims the run and writes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import sacrebleu
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mt import checkpoint as ckpt
from mt import config as config_mod
from mt import corpora, data, experiments, files, memory, resumes, shortlist
from mt.config import Config
from mt.distributed import Distributed
from mt.errors import MTError
from mt.evaluate import Pairs, Scored, bleu_signature, decode_and_score
from mt.model import build_model, count_parameters
from mt.optim import learning_rate, make_optimizer, precision_note
from mt.step import train_step
from mt.tracking import Tracker
from mt.train_state import TrainState, epoch_checkpoints, keep_epoch, restore_training, save_training, save_weights
from mt.translate import Translator
from mt.vocab import PAD

Log = Callable[[str], None]


class Interrupt:
    """Ctrl-C / SIGTERM: finish the current step, save, stop cleanly (a second Ctrl-C aborts)."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> Interrupt:
        self.old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in self.old:
            signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for s, handler in self.old.items():
            signal.signal(s, handler)


@dataclass
class Session:
    """What one training works with: its resolved config, data, model, optimiser and counters."""

    cfg: Config
    run: Path
    dist: Distributed
    dev: torch.device
    log: Log
    train_data: data.Encoded
    dev_data: data.Encoded  # teacher-forced dev loss
    dev_pairs: Pairs  # decoded dev BLEU: dev_data's sources and the corpus's dev references
    model: nn.Module
    step_model: nn.Module  # what training steps call: the model, wrapped for DDP and/or compiled
    optimizer: torch.optim.Optimizer
    translator: Translator
    meta_base: dict  # the metadata every checkpoint of the run carries
    state: TrainState
    tracker: Tracker


def start(cfg: Config | None, name: str | None, resume: str | None, flags: dict, sets: list[str],
          device: str = "cpu", log: Log = print) -> tuple[Path, dict]:
    """`mt train`: a new run of `cfg` (config.load), or `resume` a run (its saved config, extended by `flags`
    and `sets`); returns (run folder, summary)."""
    if resume:
        run = experiments.find_run(resume)
        cfg = resumes.resumed_config(run, flags, sets)  # only operational settings may change: mt/resumes.py
    else:
        run = experiments.runs_root() / (name or f"{cfg.model_type}-{Path(cfg.data.corpus).name}")
    return run, train(cfg, run, device, resume=bool(resume), log=log)


def train(cfg: Config, run: Path, device: str = "cpu", resume: bool = False, log: Log = print,
          run_files: dict[str, str] | None = None) -> dict:
    """Train a model into run folder `run` (plus `run_files`, name → text, in a new one); the final summary."""
    dist, dev = _devices(cfg, device)
    log = log if dist.main else (lambda _msg: None)
    torch.manual_seed(cfg.train.seed)
    with _claim(run, resume, dist):
        s = _set_up(cfg, run, dist, dev, resume, log, run_files or {})
        try:
            stopped = fit(s)
        finally:
            s.tracker.close()
        return _finish(s, stopped)


def fit(s: Session) -> str:
    """For each epoch: train, evaluate, update the run state, save, decide to stop; returns why it stopped."""
    stopped = "epochs" if s.state.epoch >= s.cfg.train.epochs else None
    with Interrupt() as interrupt:
        while stopped is None:
            t0 = time.time()
            loss, n_tok, n_src = _train_epoch(s, interrupt)
            seconds = time.time() - t0
            s.state.train_seconds += seconds
            if interrupt.requested:
                _save(s, "last")
                s.log(f"interrupted at epoch {s.state.epoch + 1}, step {s.state.step}: saved {s.run / 'last.safetensors'}")
                return "interrupted"
            if s.dist.main:
                record = _epoch_record(s, loss, n_tok, n_src, seconds)
                improved, decayed = s.state.end_epoch(record["dev_bleu"], s.cfg.train)
                _save_epoch(s, record, improved)
                s.tracker.epoch(record, s.state.best_bleu)
                s.log(_format(record, improved))
                if decayed:
                    s.log(f"no dev BLEU gain for {s.state.bad_epochs} epoch{'s' * (s.state.bad_epochs > 1)}: "
                          f"lr → {learning_rate(s.state.step + 1, s.cfg.train, s.state.lr_decays):.2e}")
            if s.cfg.train.trim_memory_every:  # evaluation and checkpoint bytes are freed: give them back too
                memory.trim()
            s.state = TrainState(**s.dist.broadcast(asdict(s.state)))  # rank 0 decides best/patience
            stopped = s.state.stop_reason(s.cfg.train)
    if stopped == "early stopping":
        s.log(f"early stopping: no dev BLEU gain for {s.state.bad_epochs} epochs "
              f"(best {s.state.best_bleu:.2f} at epoch {s.state.best_epoch})")
    elif stopped == "time limit":
        s.log(f"time limit: {s.state.train_seconds / 60:.1f} minutes of training, {s.state.epoch} of "
              f"{s.cfg.train.epochs} epochs: the result is not the config's (`mt train --resume {s.run.name}` finishes it)")
    return stopped


# -- set up and finish -----------------------------------------------------------------------

def _devices(cfg: Config, device: str) -> tuple[Distributed, torch.device]:
    """The process group (a no-op for one process) and this rank's device; threads and kernel caches."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MTError("--device cuda requested but no CUDA device is available")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    memory.limit_kernel_cache(cfg.train.kernel_cache)
    dist = Distributed(dev)
    if dist.world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dist, dev


def _claim(run: Path, resume: bool, dist: Distributed) -> ExitStack:
    """Rank 0 claims the run folder (experiments.claim_run) for the whole training; every rank learns the outcome."""
    stack, error = ExitStack(), None
    if dist.main:
        try:
            stack.enter_context(experiments.claim_run(run, resume))
        except MTError as e:
            error = str(e)
    error = dist.broadcast({"error": error})["error"]
    if error:
        raise MTError(error)
    return stack


def _load_data(cfg: Config, dist: Distributed, log: Log) -> tuple[Config, data.Prepared, Pairs]:
    """Corpus and encoded data (rank 0 first, the others then find them ready), `auto` settings made concrete;
    the dev set to decode (its encoded sources, the corpus's references)."""
    found = corpora.resolve(cfg.data.corpus, exclude=cfg.data.exclude) if dist.main else None  # fetch/split once
    dist.barrier()
    corpus_dir, tokenized = found or corpora.resolve(cfg.data.corpus, exclude=cfg.data.exclude)
    cfg = replace(cfg, data=cfg.data.resolved(tokenized))
    prep = data.prepare(cfg.data, corpus_dir, log) if dist.main else None
    dist.barrier()
    prep = prep or data.prepare(cfg.data, corpus_dir, log)
    dev = prep.split("dev")
    sources = dev.src_rows()
    lang = cfg.data.langs[1]
    return cfg, prep, Pairs(sources, list(corpora.read_lines(corpus_dir / f"dev.{lang}")), tokenized, lang)


def _planned(cfg: Config, train_data: data.Encoded, dist: Distributed) -> Config:
    """Cosine with decay_steps = 0 decays over all planned steps (the saved config keeps 0: a resume with more
    --epochs re-plans it)."""
    if cfg.train.schedule != "cosine" or cfg.train.decay_steps:
        return cfg
    per_epoch = len(dist.shard(data.make_batches(train_data.src_lens, train_data.tgt_lens, cfg.train.batch_tokens,
                                                 cfg.train.seed, 1, True, cfg.data.max_len)))
    return replace(cfg, train=replace(cfg.train, decay_steps=cfg.train.epochs * per_epoch))


def _set_up(cfg: Config, run: Path, dist: Distributed, dev: torch.device, resume: bool, log: Log,
            run_files: dict[str, str]) -> Session:
    """Data, model, optimiser and counters: restored from `last` on resume, else a new run folder's files."""
    saved_cfg, prep, dev_pairs = _load_data(cfg, dist, log)
    tokenized = dev_pairs.ref_tokenized
    train_data = prep.split("train")
    cfg = _planned(saved_cfg, train_data, dist)
    model = build_model(cfg.model_type, cfg.model, len(prep.src_vocab), len(prep.tgt_vocab)).to(dev)
    optimizer = make_optimizer(model, cfg.train)
    state = TrainState()
    if resume:
        state = _resume(run, model, optimizer, dev, saved_cfg, dist, log)
    elif dist.main:
        _init_run(run, saved_cfg, prep, model, tokenized, run_files)
    step_model = dist.wrap(model)
    if cfg.train.compile:  # training steps only; evaluation and checkpoints use the plain module
        step_model = torch.compile(step_model, dynamic=True)
    dev_decode = replace(cfg.decode, shortlist=(0, 0))  # dev BLEU over the whole vocabulary, whatever decoding uses later
    translator = Translator(model, prep.src_pipe, prep.tgt_pipe, prep.src_vocab, prep.tgt_vocab, dev_decode, str(dev),
                            cfg.data.langs[1])
    log(f"{cfg.model_type}: {count_parameters(model):,} parameters; vocab {len(prep.src_vocab)}/"
        f"{len(prep.tgt_vocab)}; {len(train_data):,} training pairs; device {dev}"
        + (f"; {dist.world} processes" if dist.world > 1 else ""))
    if note := precision_note(cfg.train.precision, dev):
        log(f"note: {note}")
    tracker = Tracker(run, cfg.train.tensorboard and dist.main, state.step + 1, log)
    tracker.text("config", config_mod.to_toml(saved_cfg))
    tracker.text("bleu_signature", bleu_signature(tokenized, cfg.data.langs[1]))
    return Session(cfg, run, dist, dev, log, train_data, prep.split("dev"), dev_pairs, model, step_model, optimizer,
                   translator, _meta_base(saved_cfg, prep, tokenized), state, tracker)


def _resume(run: Path, model: nn.Module, optimizer, dev: torch.device, cfg: Config, dist: Distributed,
            log: Log) -> TrainState:
    """Counters, weights, optimiser and RNG from `last`; the record cut back to the epochs `last` holds."""
    if dist.main:
        if stale := ckpt.remove_stale_temps(run):
            log(f"removed {len(stale)} unfinished checkpoint write(s) of a killed run: {', '.join(p.name for p in stale)}")
    state = restore_training(run / "last.safetensors", model, optimizer, dev)
    if dist.main:  # config.toml stays as the run started; each change is recorded with the epoch it starts at
        for c in resumes.record(run, cfg, state.epoch + 1, state.step):
            log(f"{c['key']}: {c['old']} → {c['new']} from epoch {c['epoch']} (recorded in {resumes.CHANGES})")
    if dist.main and (dropped := experiments.keep_metrics_through(run, state.epoch)):
        log(f"{dropped} record(s) in metrics.jsonl were of epochs after the last checkpoint: removed, they are redone")
    log(f"resumed {run.name} at epoch {state.epoch}, batch {state.batch_in_epoch}, step {state.step}")
    return state


def _finish(s: Session, stopped: str) -> dict:
    """The summary; after a full run, averaging and the final choice; DDP teardown."""
    in_sync = s.dist.in_sync(s.model)
    summary = {"stopped": stopped, "epochs": s.state.epoch, "planned_epochs": s.cfg.train.epochs,
               "complete": stopped in ("epochs", "early stopping"), "steps": s.state.step,
               "best_dev_bleu": s.state.best_bleu, "best_epoch": s.state.best_epoch,
               "train_minutes": round(s.state.train_seconds / 60, 2), "ranks_in_sync": in_sync}
    if s.dist.main and stopped != "interrupted" and s.cfg.train.average_last > 1:
        summary.update(_average_and_choose(s))
    if s.dist.main:
        experiments.append_metrics(s.run, {"summary": summary})
    if s.dist.world > 1:
        s.log(f"ranks in sync: {in_sync}")
        s.dist.barrier()  # rank 0 may still be averaging: a peer that tears down first aborts it (gloo)
        torch.distributed.destroy_process_group()
    return summary


# -- one epoch -------------------------------------------------------------------------------

def _train_epoch(s: Session, interrupt: Interrupt) -> tuple[float, int, int]:
    """Train on this epoch's batches from where the state says; returns (mean loss, tgt tokens, src tokens)."""
    cfg, state = s.cfg, s.state
    batches = s.dist.shard(data.make_batches(s.train_data.src_lens, s.train_data.tgt_lens, cfg.train.batch_tokens,
                                             cfg.train.seed, state.epoch + 1, True, cfg.data.max_len))
    s.step_model.train()
    total_loss, total_tok, total_src = 0.0, 0, 0
    bar = tqdm(total=len(batches), initial=state.batch_in_epoch, desc=f"epoch {state.epoch + 1}",
               disable=not sys.stderr.isatty() or not s.dist.main, leave=False, dynamic_ncols=True)
    for i in range(state.batch_in_epoch, len(batches)):
        batch = data.collate(s.train_data, batches[i]).to(s.dev)
        lr = learning_rate(state.step + 1, cfg.train, state.lr_decays)
        t0 = time.perf_counter()
        loss, grad_norm = train_step(s.step_model, s.optimizer, batch, cfg, state.step + 1, state.epoch + 1, s.dev,
                                     state.lr_decays)
        state.step += 1
        value = loss.item()
        s.tracker.update(state.step, value, lr, grad_norm, batch.n_tokens / (time.perf_counter() - t0))
        state.batch_in_epoch = i + 1
        total_loss += value * batch.n_tokens
        total_tok += batch.n_tokens
        total_src += int(batch.src_len.sum())
        bar.update(1)
        bar.set_postfix(loss=f"{value:.3f}", lr=f"{lr:.2e}")
        if interrupt.requested:
            break
        if cfg.train.save_every_steps and state.step % cfg.train.save_every_steps == 0:
            _save(s, "last")
    bar.close()
    return total_loss / max(total_tok, 1), total_tok, total_src


def _epoch_record(s: Session, loss: float, n_tok: int, n_src: int, seconds: float) -> dict:
    """The line metrics.jsonl keeps for the epoch just trained (the state's counters not yet advanced)."""
    return {"epoch": s.state.epoch + 1, "step": s.state.step, "train_loss": loss, **_evaluate(s),
            "lr": learning_rate(s.state.step, s.cfg.train, s.state.lr_decays), "seconds": round(seconds, 1),
            "tgt_tokens_per_s": round(n_tok / seconds), "src_tgt_tokens_per_s": round((n_tok + n_src) / seconds)}


@torch.no_grad()
def _evaluate(s: Session) -> dict:
    """Dev loss (teacher-forced NLL per token) and decoded dev BLEU/chrF."""
    s.model.eval()
    nll, n_tok = 0.0, 0
    for idx in data.make_batches(s.dev_data.src_lens, s.dev_data.tgt_lens, s.cfg.train.batch_tokens, shuffle=False):
        for batch in data.collate(s.dev_data, idx).to(s.dev).split(s.cfg.train.micro_batches):
            logits = s.model(batch.src, batch.src_len, batch.tgt_in)
            V = logits.size(-1)
            nll += F.cross_entropy(logits.float().view(-1, V), batch.tgt_out.view(-1),  # (B*T, V)
                                   ignore_index=PAD, reduction="sum").item()
            n_tok += batch.n_tokens
    scored = _decode_dev(s, s.cfg.train.dev_beam)
    s.model.train()
    return {"dev_loss": round(nll / max(n_tok, 1), 4), "dev_bleu": round(scored.bleu, 2),
            "dev_chrf": round(scored.scores["chrf"], 2)}


def _decode_dev(s: Session, beam: int) -> Scored:
    """The dev set decoded with `beam` (and the translator's α), scored: the headline BLEU and chrF."""
    return decode_and_score(s.translator, s.dev_pairs, beam, every=False)


def _format(r: dict, improved: bool) -> str:
    return (f"epoch {r['epoch']:3d}  step {r['step']:6d}  train loss {r['train_loss']:.3f}  "
            f"dev loss {r['dev_loss']:.3f}  dev BLEU {r['dev_bleu']:5.2f}  chrF {r['dev_chrf']:5.2f}  "
            f"lr {r['lr']:.2e}  {r['seconds']:.0f}s  {r['tgt_tokens_per_s']} tgt tok/s"
            + ("  *" if improved else ""))


# -- run folder, checkpoints -----------------------------------------------------------------

def _save(s: Session, name: str) -> None:
    if s.dist.main:
        save_training(s.run / f"{name}.safetensors", s.model, s.optimizer, s.state, s.meta_base)


def _save_epoch(s: Session, record: dict, improved: bool) -> None:
    """best and epoch-<n> (weights only), then the record, then `last`: a write that fails (no space left)
    leaves `last` at the previous epoch, and a resume cuts the record back to it and redoes this epoch."""
    if improved:
        save_weights(s.run / "best.safetensors", s.model, s.state, s.meta_base)
    keep_epoch(s.run, s.state.epoch, s.cfg.train.keep_epochs, s.model, s.state, s.meta_base)
    experiments.append_metrics(s.run, record)
    _save(s, "last")


def _meta_base(cfg: Config, prep: data.Prepared, tokenized: bool) -> dict:
    return {"config": cfg.to_dict(), "src_vocab": prep.src_vocab.to_json(),
            "tgt_vocab": prep.tgt_vocab.to_json(), "src_sp": ckpt.sp_to_json(prep.src_pipe.sp_model),
            "tgt_sp": ckpt.sp_to_json(prep.tgt_pipe.sp_model), "corpus_tokenized": tokenized}


def _init_run(run: Path, cfg: Config, prep: data.Prepared, model: nn.Module, tokenized: bool,
              run_files: dict[str, str]) -> None:
    """A new run folder's files: config, vocabularies, sentencepiece models, info (versions, signature)."""
    files.write_text(run / "config.toml", config_mod.to_toml(cfg))
    files.write_text(run / "vocab.json", json.dumps({"src": prep.src_vocab.to_json(), "tgt": prep.tgt_vocab.to_json()},
                                                    ensure_ascii=False))
    for side, pipe in (("src", prep.src_pipe), ("tgt", prep.tgt_pipe)):
        if pipe.sp_model:
            files.write_bytes(run / f"{side}.sp.model", pipe.sp_model)
    info = {"model": cfg.model_type, "params": count_parameters(model), "corpus": cfg.data.corpus,
            "corpus_dir": str(prep.corpus_dir), "corpus_tokenized": tokenized, "torch": torch.__version__,
            "sacrebleu": sacrebleu.__version__, "bleu_signature": bleu_signature(tokenized, cfg.data.langs[1]),
            **({"removed_from_training": prep.removed} if prep.removed else {})}
    files.write_text(run / "info.json", json.dumps(info, indent=1))
    shortlist.save(shortlist.build(prep.split("train"), len(prep.src_vocab), len(prep.tgt_vocab)),
                   run / shortlist.FILE, prep.src_vocab, prep.tgt_vocab)  # for decode.shortlist
    for name, text in run_files.items():
        files.write_text(run / name, text)


def _average_and_choose(s: Session) -> dict:
    """Average the last k epoch checkpoints; `final` = the better of best and averaged on dev BLEU, decoded
    as `mt translate` will decode it (decode.beam, decode.alpha). The best epoch was picked by the cheaper
    per-epoch dev decode (train.dev_beam); at the end, beam search with the run's length penalty can rank
    the two the other way round (docs/results.md, the default Transformer)."""
    epochs = epoch_checkpoints(s.run, s.cfg.train.average_last)
    if len(epochs) < 2:
        return {}
    weights, _ = ckpt.average([s.run / f"epoch-{e}.safetensors" for e in epochs])
    s.model.load_state_dict(weights)
    scores = _evaluate(s)
    ckpt.save_model(s.run / "averaged.safetensors", weights, {**s.meta_base, "averaged_epochs": epochs})
    best_bleu = ckpt.read_meta(s.run / "best.safetensors")["trainer"]["best_bleu"]
    found = {"averaged": scores["dev_bleu"], "best": best_bleu}
    how = f"beam {s.cfg.decode.beam}, α {s.cfg.decode.alpha}"
    if s.cfg.decode.beam != s.cfg.train.dev_beam:  # else the per-epoch scores already are these
        s.model.eval()
        found["averaged"] = round(_decode_dev(s, s.cfg.decode.beam).bleu, 2)
        s.model.load_state_dict(ckpt.load_weights(s.run / "best.safetensors"))
        found["best"] = round(_decode_dev(s, s.cfg.decode.beam).bleu, 2)
        s.model.train()
    chosen = "averaged" if found["averaged"] >= found["best"] else "best"
    ckpt.copy(s.run / f"{chosen}.safetensors", s.run / "final.safetensors")
    s.log(f"averaged epochs {epochs[0]}-{epochs[-1]}: dev BLEU {scores['dev_bleu']:.2f} "
          f"(best single {best_bleu:.2f}); {how}: averaged {found['averaged']:.2f}, best {found['best']:.2f}; "
          f"final = {chosen}")
    return {"averaged_epochs": epochs, "averaged_dev_bleu": scores["dev_bleu"], "final": chosen,
            "final_chosen_by": how, "final_dev_bleu": found}
