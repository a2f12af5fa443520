"""One trainer for both model families: fit() reads top to bottom.

for epoch: train_epoch → evaluate (dev loss, decoded dev BLEU/chrF) → log → checkpoint.
Resume is exact: epoch, position inside the epoch, step, optimiser, RNG, best BLEU, patience.
Data-parallel under torchrun (DDP; gloo on CPU, nccl on GPU): only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mt import checkpoint as ckpt
from mt import config as config_mod
from mt import corpora, data, experiments, memory, metrics
from mt.config import Config
from mt.distributed import Distributed
from mt.errors import MTError
from mt.loss import smoothed_cross_entropy
from mt.model import build_model, count_parameters
from mt.optim import learning_rate, make_optimizer, use_bf16
from mt.text import detokenize_ja
from mt.train_state import TrainState, average_checkpoints, keep_epoch, restore_training, save_training, save_weights
from mt.translate import Translator
from mt.vocab import PAD


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


def train(cfg: Config, run: Path, device: str = "cpu", resume: bool = False,
          log: Callable[[str], None] = print) -> dict:
    """Train a model into run folder `run`; returns the final summary."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MTError("--device cuda requested but no CUDA device is available")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    memory.limit_kernel_cache(cfg.train.kernel_cache)
    dist = Distributed(dev)
    if dist.world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    log = log if dist.main else (lambda _msg: None)
    torch.manual_seed(cfg.train.seed)

    if dist.main:  # fetch or split the corpus once; the other ranks wait, then find it ready
        corpora.resolve(cfg.data.corpus)
    dist.barrier()
    corpus_dir, tokenized = corpora.resolve(cfg.data.corpus)
    if cfg.data.tgt_tokenizer == "auto":
        cfg = replace(cfg, data=replace(cfg.data, tgt_tokenizer="space" if tokenized else "janome"))
    prep = data.prepare(cfg.data, corpus_dir, log) if dist.main else None
    dist.barrier()
    prep = prep or data.prepare(cfg.data, corpus_dir, log)
    train_data, dev_data = prep.split("train"), prep.split("dev")
    saved_cfg = cfg  # decay_steps = 0 stays "all planned steps", so a resume with more --epochs re-plans it
    if cfg.train.schedule == "cosine" and not cfg.train.decay_steps:
        per_epoch = len(dist.shard(data.make_batches(train_data.src_lens, train_data.tgt_lens, cfg.train.batch_tokens,
                                                     cfg.train.seed, 1, True, cfg.data.max_len)))
        cfg = replace(cfg, train=replace(cfg.train, decay_steps=cfg.train.epochs * per_epoch))
    dev_refs = list(corpora.read_lines(corpus_dir / "dev.ja"))

    model = build_model(cfg.model_type, cfg.model, len(prep.src_vocab), len(prep.tgt_vocab)).to(dev)
    optimizer = make_optimizer(model, cfg.train)
    state = TrainState()
    if resume:
        if dist.main and (stale := ckpt.remove_stale_temps(run)):
            log(f"removed {len(stale)} unfinished checkpoint write(s) of a killed run: {', '.join(p.name for p in stale)}")
        state = restore_training(run / "last.safetensors", model, optimizer, dev)
        log(f"resumed {run.name} at epoch {state.epoch}, batch {state.batch_in_epoch}, step {state.step}")
    elif dist.main:
        _init_run(run, saved_cfg, prep, model, tokenized)
    meta_base = _meta_base(saved_cfg, prep, tokenized)
    ddp_model = dist.wrap(model)
    if cfg.train.compile:  # training steps only; evaluation and checkpoints use the plain module
        ddp_model = torch.compile(ddp_model, dynamic=True)
    translator = Translator(model, prep.src_pipe, prep.tgt_pipe, prep.src_vocab, prep.tgt_vocab,
                            cfg.decode, str(dev))
    log(f"{cfg.model_type}: {count_parameters(model):,} parameters; vocab {len(prep.src_vocab)}/"
        f"{len(prep.tgt_vocab)}; {len(train_data):,} training pairs; device {dev}"
        + (f"; {dist.world} processes" if dist.world > 1 else ""))

    def save(name: str) -> None:
        if dist.main:
            save_training(run / f"{name}.safetensors", model, optimizer, state, meta_base)

    stopped = "epochs"
    with Interrupt() as interrupt:
        while state.epoch < cfg.train.epochs:
            t0 = time.time()
            loss, n_tok, n_src = _train_epoch(ddp_model, optimizer, train_data, cfg, state, dist, dev, interrupt, save)
            seconds = time.time() - t0
            state.train_seconds += seconds
            if interrupt.requested:
                save("last")
                stopped = "interrupted"
                log(f"interrupted at epoch {state.epoch + 1}, step {state.step}: saved {run / 'last.safetensors'}")
                break
            state.epoch += 1
            state.batch_in_epoch = 0
            record = None
            if dist.main:
                record = _evaluate(model, translator, dev_data, dev_refs, tokenized, cfg, dev)
                record = {"epoch": state.epoch, "step": state.step, "train_loss": loss, **record,
                          "lr": learning_rate(state.step, cfg.train, state.lr_decays), "seconds": round(seconds, 1),
                          "tgt_tokens_per_s": round(n_tok / seconds), "src_tgt_tokens_per_s": round((n_tok + n_src) / seconds)}
                improved = record["dev_bleu"] > state.best_bleu
                if improved:
                    state.best_bleu, state.best_epoch, state.bad_epochs = record["dev_bleu"], state.epoch, 0
                else:
                    state.bad_epochs += 1
                    if cfg.train.schedule == "plateau" and state.bad_epochs % cfg.train.decay_patience == 0:
                        state.lr_decays += 1
                        log(f"no dev BLEU gain for {state.bad_epochs} epoch{'s' * (state.bad_epochs > 1)}: "
                            f"lr → {learning_rate(state.step + 1, cfg.train, state.lr_decays):.2e}")
                experiments.append_metrics(run, record)
                log(_format(record, improved))
                save("last")
                if improved:  # weights only: `last` holds what resuming needs
                    save_weights(run / "best.safetensors", model, state, meta_base)
                keep_epoch(run, state.epoch, cfg.train.keep_epochs, model, state, meta_base)
            if cfg.train.trim_memory_every:  # evaluation and checkpoint bytes are freed: give them back too
                memory.trim()
            state = TrainState(**dist.broadcast(asdict(state)))  # rank 0 decides best/patience
            if cfg.train.patience and state.bad_epochs >= cfg.train.patience:
                stopped = "early stopping"
                log(f"early stopping: no dev BLEU gain for {state.bad_epochs} epochs "
                    f"(best {state.best_bleu:.2f} at epoch {state.best_epoch})")
                break
            if cfg.train.max_minutes and state.train_seconds >= cfg.train.max_minutes * 60:
                stopped = "time limit"
                log(f"time limit: {state.train_seconds / 60:.1f} minutes of training")
                break
    in_sync = dist.in_sync(model)
    summary = {"stopped": stopped, "epochs": state.epoch, "steps": state.step,
               "best_dev_bleu": state.best_bleu, "best_epoch": state.best_epoch,
               "train_minutes": round(state.train_seconds / 60, 2), "ranks_in_sync": in_sync}
    if dist.main and stopped != "interrupted" and cfg.train.average_last > 1:
        summary.update(_average_and_choose(run, cfg, translator, model, dev_data, dev_refs, tokenized, dev, meta_base, log))
    if dist.main:
        experiments.append_metrics(run, {"summary": summary})
    if dist.world > 1:
        log(f"ranks in sync: {in_sync}")
        dist.barrier()  # rank 0 may still be averaging: a peer that tears down first aborts it (gloo)
        torch.distributed.destroy_process_group()
    return summary


def token_loss(logits: torch.Tensor, batch: data.Batch, label_smoothing: float, n_tokens: int = 0) -> torch.Tensor:
    """Label-smoothed cross-entropy per real target token (padding ignored): the training loss.

    `n_tokens` divides the summed loss (default: the batch's own tokens; a micro-batch passes its whole batch's)."""
    return smoothed_cross_entropy(logits.reshape(-1, logits.size(-1)), batch.tgt_out.view(-1), label_smoothing,
                                  PAD) / (n_tokens or batch.n_tokens)


def train_step(model, optimizer, batch: data.Batch, cfg: Config, step: int, epoch: int,
               dev: torch.device, lr_decays: int = 0) -> torch.Tensor:
    """One optimiser update on `batch` as step `step` (1-based): lr, forward, loss, backward, clip; the loss.

    With train.micro_batches = k the batch's rows go through forward/backward in k chunks whose gradients add
    up to the whole batch's (the loss of each is divided by the whole batch's tokens): the same update, with
    about 1/k of the activation memory."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, cfg.train, lr_decays)
    optimizer.zero_grad(set_to_none=True)
    parts = batch.split(cfg.train.micro_batches)
    total = torch.zeros(())
    for i, part in enumerate(parts):
        sync = nullcontext() if i == len(parts) - 1 or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16(cfg.train.precision, dev)):
                logits = model(part.src, part.src_len, part.tgt_in)
            loss = token_loss(logits, part, cfg.train.label_smoothing, batch.n_tokens)
            if not torch.isfinite(loss):
                raise MTError(f"loss is {loss.item()} at step {step} (epoch {epoch}); "
                              f"stopped, the last good checkpoint is kept. Try a lower train.lr or train.clip_grad.")
            loss.backward()
            del logits
        total += loss.detach().cpu()
    if cfg.train.clip_grad:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_grad)
    optimizer.step()
    if cfg.train.trim_memory_every and step % cfg.train.trim_memory_every == 0:
        memory.trim()
    return total


def _train_epoch(model, optimizer, train_data, cfg: Config, state: TrainState, dist: Distributed,
                 dev: torch.device, interrupt: Interrupt, save) -> tuple[float, int, int]:
    """Train on this epoch's batches from where the state says; returns (mean loss, tgt tokens, src tokens)."""
    batches = dist.shard(data.make_batches(train_data.src_lens, train_data.tgt_lens, cfg.train.batch_tokens,
                                           cfg.train.seed, state.epoch + 1, True, cfg.data.max_len))
    model.train()
    total_loss, total_tok, total_src = 0.0, 0, 0
    bar = tqdm(total=len(batches), initial=state.batch_in_epoch, desc=f"epoch {state.epoch + 1}",
               disable=not sys.stderr.isatty() or not dist.main, leave=False, dynamic_ncols=True)
    for i in range(state.batch_in_epoch, len(batches)):
        batch = data.collate(train_data, batches[i]).to(dev)
        lr = learning_rate(state.step + 1, cfg.train, state.lr_decays)
        loss = train_step(model, optimizer, batch, cfg, state.step + 1, state.epoch + 1, dev, state.lr_decays)
        state.step += 1
        state.batch_in_epoch = i + 1
        total_loss += loss.item() * batch.n_tokens
        total_tok += batch.n_tokens
        total_src += int(batch.src_len.sum())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
        if interrupt.requested:
            break
        if cfg.train.save_every_steps and state.step % cfg.train.save_every_steps == 0:
            save("last")
    bar.close()
    return total_loss / max(total_tok, 1), total_tok, total_src


@torch.no_grad()
def _evaluate(model, translator: Translator, dev_data, dev_refs: list[str], tokenized: bool,
              cfg: Config, dev: torch.device) -> dict:
    """Dev loss (teacher-forced NLL per token) and decoded dev BLEU/chrF."""
    model.eval()
    nll, n_tok = 0.0, 0
    for idx in data.make_batches(dev_data.src_lens, dev_data.tgt_lens, cfg.train.batch_tokens, shuffle=False):
        for batch in data.collate(dev_data, idx).to(dev).split(cfg.train.micro_batches):
            logits = model(batch.src, batch.src_len, batch.tgt_in)
            nll += F.cross_entropy(logits.float().view(-1, logits.size(-1)), batch.tgt_out.view(-1),
                                   ignore_index=PAD, reduction="sum").item()
            n_tok += batch.n_tokens
    scores = _decode_dev(translator, dev_data, dev_refs, tokenized, cfg.train.dev_beam)
    model.train()
    return {"dev_loss": round(nll / max(n_tok, 1), 4), "dev_bleu": round(scores["bleu"], 2),
            "dev_chrf": round(scores["chrf"], 2)}


def _decode_dev(translator: Translator, dev_data, dev_refs: list[str], tokenized: bool, beam: int) -> dict:
    """Decode the dev set with `beam` (and the translator's α) and score it: {bleu, chrf}."""
    sources = [dev_data.src[dev_data.src_off[i]: dev_data.src_off[i + 1]].tolist() for i in range(len(dev_data))]
    hyps = [translator.output(h[0]) for h in translator.translate_ids(sources, beam=beam)]
    return _score(hyps, dev_refs, tokenized)


def _score(hyps, refs: list[str], tokenized: bool) -> dict:
    """Dev BLEU: corpus tokens for a tokenized corpus, else ja-mecab on detokenized text."""
    detok_refs = [detokenize_ja(r.split()) for r in refs] if tokenized else refs
    chrf = metrics.chrf([h.text for h in hyps], detok_refs)[0]
    if tokenized:
        return {"bleu": metrics.corpus_token_bleu([h.tokens for h in hyps], refs)[0], "chrf": chrf}
    return {"bleu": metrics.ja_bleu([h.text for h in hyps], detok_refs)[0], "chrf": chrf}


def _format(r: dict, improved: bool) -> str:
    return (f"epoch {r['epoch']:3d}  step {r['step']:6d}  train loss {r['train_loss']:.3f}  "
            f"dev loss {r['dev_loss']:.3f}  dev BLEU {r['dev_bleu']:5.2f}  chrF {r['dev_chrf']:5.2f}  "
            f"lr {r['lr']:.2e}  {r['seconds']:.0f}s  {r['tgt_tokens_per_s']} tgt tok/s"
            + ("  *" if improved else ""))


# -- run folder, checkpoints --------------------------------------------------------------

def _meta_base(cfg: Config, prep: data.Prepared, tokenized: bool) -> dict:
    return {"config": cfg.to_dict(), "src_vocab": prep.src_vocab.to_json(),
            "tgt_vocab": prep.tgt_vocab.to_json(), "src_sp": ckpt.sp_to_json(prep.src_pipe.sp_model),
            "tgt_sp": ckpt.sp_to_json(prep.tgt_pipe.sp_model), "corpus_tokenized": tokenized}


def _init_run(run: Path, cfg: Config, prep: data.Prepared, model, tokenized: bool) -> None:
    if (run / "metrics.jsonl").exists():
        raise MTError(f"run {run} already exists: pick another --name, or --resume {run.name}")
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.toml").write_text(config_mod.to_toml(cfg), encoding="utf-8")
    (run / "vocab.json").write_text(json.dumps({"src": prep.src_vocab.to_json(), "tgt": prep.tgt_vocab.to_json()},
                                               ensure_ascii=False), encoding="utf-8")
    for side, pipe in (("src", prep.src_pipe), ("tgt", prep.tgt_pipe)):
        if pipe.sp_model:
            (run / f"{side}.sp.model").write_bytes(pipe.sp_model)
    import sacrebleu

    info = {"model": cfg.model_type, "params": count_parameters(model), "corpus": cfg.data.corpus,
            "corpus_dir": str(prep.corpus_dir), "corpus_tokenized": tokenized, "torch": torch.__version__,
            "sacrebleu": sacrebleu.__version__,
            "bleu_signature": metrics.corpus_token_bleu(["a"], ["a"])[1] if tokenized else metrics.ja_bleu(["a"], ["a"])[1]}
    (run / "info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")


def _average_and_choose(run: Path, cfg: Config, translator: Translator, model, dev_data, dev_refs,
                        tokenized: bool, dev, meta_base: dict, log) -> dict:
    """Average the last k epoch checkpoints; `final` = the better of best and averaged on dev BLEU, decoded
    as `mt translate` will decode it (decode.beam, decode.alpha). The best epoch was picked by the cheaper
    per-epoch dev decode (train.dev_beam); at the end, beam search with the run's length penalty can rank
    the two the other way round (the default Transformer: README, Results, footnote ¹)."""
    epochs = sorted(int(p.stem.split("-")[1]) for p in run.glob("epoch-*.safetensors"))[-cfg.train.average_last:]
    if len(epochs) < 2:
        return {}
    weights, _ = average_checkpoints([run / f"epoch-{e}.safetensors" for e in epochs])
    model.load_state_dict(weights)
    scores = _evaluate(model, translator, dev_data, dev_refs, tokenized, cfg, dev)
    ckpt.save(run / "averaged.safetensors", {f"model.{k}": v for k, v in weights.items()},
              {**meta_base, "averaged_epochs": epochs})
    best_tensors, best_meta = ckpt.load(run / "best.safetensors")
    best_bleu = best_meta["trainer"]["best_bleu"]
    found = {"averaged": scores["dev_bleu"], "best": best_bleu}
    how = f"beam {cfg.decode.beam}, α {cfg.decode.alpha}"
    if cfg.decode.beam != cfg.train.dev_beam:  # else the per-epoch scores already are these
        model.eval()
        found["averaged"] = round(_decode_dev(translator, dev_data, dev_refs, tokenized, cfg.decode.beam)["bleu"], 2)
        model.load_state_dict(ckpt.prefixed(best_tensors, "model."))
        found["best"] = round(_decode_dev(translator, dev_data, dev_refs, tokenized, cfg.decode.beam)["bleu"], 2)
        model.train()
    chosen = "averaged" if found["averaged"] >= found["best"] else "best"
    tmp = run / "final.safetensors.tmp"
    shutil.copyfile(run / f"{chosen}.safetensors", tmp)
    os.replace(tmp, run / "final.safetensors")
    log(f"averaged epochs {epochs[0]}-{epochs[-1]}: dev BLEU {scores['dev_bleu']:.2f} "
        f"(best single {best_bleu:.2f}); {how}: averaged {found['averaged']:.2f}, best {found['best']:.2f}; "
        f"final = {chosen}")
    return {"averaged_epochs": epochs, "averaged_dev_bleu": scores["dev_bleu"], "final": chosen,
            "final_chosen_by": how, "final_dev_bleu": found}

