"""One trainer for both model families: fit() reads top to bottom.

for epoch: train_epoch → evaluate (dev loss, decoded dev BLEU/chrF) → log → checkpoint.
Resume is exact: epoch, position inside the epoch, step, optimiser, RNG, best BLEU, patience.
Data-parallel under torchrun (DDP; gloo on CPU, nccl on GPU): only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mt import checkpoint as ckpt
from mt import config as config_mod
from mt import corpora, data, experiments, memory, metrics
from mt.config import Config
from mt.errors import MTError
from mt.loss import smoothed_cross_entropy
from mt.model import build_model, count_parameters
from mt.text import detokenize_ja
from mt.translate import Translator
from mt.vocab import PAD


@dataclass
class TrainState:
    """Everything besides weights and optimiser that an exact resume needs."""

    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0  # batches done in the current, unfinished epoch
    step: int = 0
    best_bleu: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best (early stopping)
    train_seconds: float = 0.0


def learning_rate(step: int, cfg) -> float:
    """Linear warmup, then inverse-sqrt decay (Vaswani et al. 2017 §5.3), a cosine decay to zero at
    `decay_steps` (Loshchilov & Hutter 2017; a fixed budget ends on a small lr, good for averaging), or constant."""
    step = max(step, 1)
    warm = min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.schedule == "inverse_sqrt" and cfg.warmup_steps:
        return cfg.lr * min(step / cfg.warmup_steps, math.sqrt(cfg.warmup_steps / step))
    if cfg.schedule == "cosine":
        if step <= cfg.warmup_steps:
            return cfg.lr * warm
        span = max(cfg.decay_steps - cfg.warmup_steps, 1)
        done = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * done))
    if cfg.schedule in ("constant", "inverse_sqrt"):
        return cfg.lr * warm
    raise MTError(f"train.schedule {cfg.schedule!r}: valid values are inverse_sqrt, cosine, constant")


def use_bf16(precision: str, dev: torch.device) -> bool:
    """bf16 autocast: asked for, or `auto` on a CUDA device that supports it."""
    if precision not in ("auto", "fp32", "bf16"):
        raise MTError(f"train.precision {precision!r}: valid values are auto, fp32, bf16")
    if precision == "auto":
        return dev.type == "cuda" and torch.cuda.is_bf16_supported()
    return precision == "bf16"


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    if cfg.optimizer not in ("adam", "adamw"):
        raise MTError(f"train.optimizer {cfg.optimizer!r}: valid values are adam, adamw")
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


class Distributed:
    """Rank/world from torchrun's environment; a no-op when run as a single process."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def shard(self, batches: list) -> list:
        """Rank r takes batches r, r+W, …; every rank gets the same number of steps."""
        n = len(batches) // self.world * self.world if self.world > 1 else len(batches)
        return batches[self.rank: n: self.world]

    def in_sync(self, model: torch.nn.Module) -> bool:
        """Do all ranks hold identical weights? (checked once at the end of training)."""
        if self.world == 1:
            return True
        total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().view(1)
        gathered = [torch.zeros_like(total) for _ in range(self.world)]
        torch.distributed.all_gather(gathered, total)
        return all(bool(g == gathered[0]) for g in gathered)


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
    dist = Distributed(dev)
    if dist.world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    log = log if dist.main else (lambda _msg: None)
    torch.manual_seed(cfg.train.seed)

    corpus_dir, tokenized = corpora.resolve(cfg.data.corpus)
    if cfg.data.tgt_tokenizer == "auto":
        cfg = replace(cfg, data=replace(cfg.data, tgt_tokenizer="space" if tokenized else "janome"))
    prep = data.prepare(cfg.data, corpus_dir, log) if dist.main else None
    dist.barrier()
    prep = prep or data.prepare(cfg.data, corpus_dir, log)
    train_data, dev_data = prep.split("train"), prep.split("dev")
    if cfg.train.schedule == "cosine" and not cfg.train.decay_steps:  # decay over all planned steps
        per_epoch = len(dist.shard(data.make_batches(train_data.src_lens, train_data.tgt_lens, cfg.train.batch_tokens,
                                                     cfg.train.seed, 1, True, cfg.data.max_len)))
        cfg = replace(cfg, train=replace(cfg.train, decay_steps=cfg.train.epochs * per_epoch))
    dev_refs = list(corpora.read_lines(corpus_dir / "dev.ja"))

    model = build_model(cfg.model_type, cfg.model, len(prep.src_vocab), len(prep.tgt_vocab)).to(dev)
    optimizer = make_optimizer(model, cfg.train)
    state = TrainState()
    if resume:
        state = _restore(run / "last.safetensors", model, optimizer, dev)
        log(f"resumed {run.name} at epoch {state.epoch}, batch {state.batch_in_epoch}, step {state.step}")
    elif dist.main:
        _init_run(run, cfg, prep, model, tokenized)
    meta_base = _meta_base(cfg, prep, tokenized)
    ddp_model = dist.wrap(model)
    translator = Translator(model, prep.src_pipe, prep.tgt_pipe, prep.src_vocab, prep.tgt_vocab,
                            cfg.decode, str(dev))
    log(f"{cfg.model_type}: {count_parameters(model):,} parameters; vocab {len(prep.src_vocab)}/"
        f"{len(prep.tgt_vocab)}; {len(train_data):,} training pairs; device {dev}"
        + (f"; {dist.world} processes" if dist.world > 1 else ""))

    def save(name: str) -> None:
        if dist.main:
            _save(run / f"{name}.safetensors", model, optimizer, state, meta_base)

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
                          "lr": learning_rate(state.step, cfg.train), "seconds": round(seconds, 1),
                          "tgt_tokens_per_s": round(n_tok / seconds), "src_tgt_tokens_per_s": round((n_tok + n_src) / seconds)}
                improved = record["dev_bleu"] > state.best_bleu
                if improved:
                    state.best_bleu, state.best_epoch, state.bad_epochs = record["dev_bleu"], state.epoch, 0
                else:
                    state.bad_epochs += 1
                experiments.append_metrics(run, record)
                log(_format(record, improved))
                save("last")
                if improved:  # weights only: `last` holds what resuming needs
                    _save_weights(run / "best.safetensors", model, state, meta_base)
                _keep_epoch(run, state.epoch, cfg.train.keep_epochs, model, state, meta_base)
            state = _broadcast_state(state, dist)
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
        torch.distributed.destroy_process_group()
    return summary


def token_loss(logits: torch.Tensor, batch: data.Batch, label_smoothing: float, n_tokens: int = 0) -> torch.Tensor:
    """Label-smoothed cross-entropy per real target token (padding ignored): the training loss.

    `n_tokens` divides the summed loss (default: the batch's own tokens; a micro-batch passes its whole batch's)."""
    return smoothed_cross_entropy(logits.reshape(-1, logits.size(-1)), batch.tgt_out.view(-1), label_smoothing,
                                  PAD) / (n_tokens or batch.n_tokens)


def train_step(model, optimizer, batch: data.Batch, cfg: Config, step: int, epoch: int,
               dev: torch.device) -> torch.Tensor:
    """One optimiser update on `batch` as step `step` (1-based): lr, forward, loss, backward, clip; the loss.

    With train.micro_batches = k the batch's rows go through forward/backward in k chunks whose gradients add
    up to the whole batch's (the loss of each is divided by the whole batch's tokens): the same update, with
    about 1/k of the activation memory."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, cfg.train)
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
        lr = learning_rate(state.step + 1, cfg.train)
        loss = train_step(model, optimizer, batch, cfg, state.step + 1, state.epoch + 1, dev)
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
        batch = data.collate(dev_data, idx).to(dev)
        logits = model(batch.src, batch.src_len, batch.tgt_in)
        nll += F.cross_entropy(logits.float().view(-1, logits.size(-1)), batch.tgt_out.view(-1),
                               ignore_index=PAD, reduction="sum").item()
        n_tok += batch.n_tokens
    sources = [dev_data.src[dev_data.src_off[i]: dev_data.src_off[i + 1]].tolist() for i in range(len(dev_data))]
    hyps = [translator.output(h[0]) for h in translator.translate_ids(sources, beam=cfg.train.dev_beam)]
    scores = _score(hyps, dev_refs, tokenized)
    model.train()
    return {"dev_loss": round(nll / max(n_tok, 1), 4), "dev_bleu": round(scores["bleu"], 2),
            "dev_chrf": round(scores["chrf"], 2)}


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


def _save(path: Path, model, optimizer, state: TrainState, meta_base: dict) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    opt_meta = {"param_groups": opt["param_groups"], "state": {}}
    for idx, values in opt["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                opt_meta["state"].setdefault(str(idx), {})[key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    ckpt.save(path, tensors, {**meta_base, "trainer": asdict(state), "optimizer": opt_meta})


def _restore(path: Path, model, optimizer, dev: torch.device) -> TrainState:
    if not path.exists():
        raise MTError(f"cannot resume: {path} does not exist")
    tensors, meta = ckpt.load(path)
    model.load_state_dict(ckpt.prefixed(tensors, "model."))
    opt_meta = meta["optimizer"]
    state: dict = {}
    for name, value in ckpt.prefixed(tensors, "optim.").items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value.to(dev) if key != "step" else value
    for idx, values in opt_meta["state"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} for g in opt_meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return TrainState(**meta["trainer"])


def _save_weights(path: Path, model, state: TrainState, meta_base: dict) -> None:
    """A checkpoint for inference and averaging: model weights and metadata, no optimiser."""
    ckpt.save(path, {f"model.{k}": v for k, v in model.state_dict().items()},
              {**meta_base, "trainer": asdict(state)})


def _keep_epoch(run: Path, epoch: int, keep: int, model, state: TrainState, meta_base: dict) -> None:
    """Weights-only epoch checkpoints for averaging; keep the last `keep`."""
    _save_weights(run / f"epoch-{epoch}.safetensors", model, state, meta_base)
    old = run / f"epoch-{epoch - keep}.safetensors"
    if keep and old.exists():
        old.unlink()


def _broadcast_state(state: TrainState, dist: Distributed) -> TrainState:
    """Rank 0 decides best/patience; everyone follows."""
    if dist.world == 1:
        return state
    box = [asdict(state)]
    torch.distributed.broadcast_object_list(box, src=0)
    return TrainState(**box[0])


def average_checkpoints(paths: list[Path]) -> tuple[dict[str, torch.Tensor], dict]:
    """Element-wise mean of the model weights of several checkpoints (last meta kept; ties kept)."""
    total, meta = None, None
    for path in paths:
        tensors, meta = ckpt.load(path)
        weights = {k: v.double() for k, v in ckpt.prefixed(tensors, "model.").items()}
        total = weights if total is None else {k: total[k] + weights[k] for k in total}
    dtype = {k: v.dtype for k, v in ckpt.prefixed(ckpt.load(paths[-1])[0], "model.").items()}
    averaged = {k: (v / len(paths)).to(dtype[k]) for k, v in total.items()}
    for name, source in meta.get("tied", {}).items():  # a tied weight stays one tensor
        if name.startswith("model.") and source.startswith("model."):
            averaged[name[6:]] = averaged[source[6:]]
    return averaged, meta


def _average_and_choose(run: Path, cfg: Config, translator: Translator, model, dev_data, dev_refs,
                        tokenized: bool, dev, meta_base: dict, log) -> dict:
    """Average the last k epoch checkpoints; `final` = the better of best and averaged on dev BLEU."""
    epochs = sorted(int(p.stem.split("-")[1]) for p in run.glob("epoch-*.safetensors"))[-cfg.train.average_last:]
    if len(epochs) < 2:
        return {}
    weights, _ = average_checkpoints([run / f"epoch-{e}.safetensors" for e in epochs])
    model.load_state_dict(weights)
    scores = _evaluate(model, translator, dev_data, dev_refs, tokenized, cfg, dev)
    ckpt.save(run / "averaged.safetensors", {f"model.{k}": v for k, v in weights.items()},
              {**meta_base, "averaged_epochs": epochs})
    _, best_meta = ckpt.load(run / "best.safetensors")
    best_bleu = best_meta["trainer"]["best_bleu"]
    chosen = "averaged" if scores["dev_bleu"] >= best_bleu else "best"
    tmp = run / "final.safetensors.tmp"
    shutil.copyfile(run / f"{chosen}.safetensors", tmp)
    os.replace(tmp, run / "final.safetensors")
    log(f"averaged epochs {epochs[0]}-{epochs[-1]}: dev BLEU {scores['dev_bleu']:.2f} "
        f"(best single {best_bleu:.2f}); final = {chosen}")
    return {"averaged_epochs": epochs, "averaged_dev_bleu": scores["dev_bleu"], "final": chosen}

