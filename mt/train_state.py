"""What a run keeps between sessions: the trainer's counters and their bookkeeping (best, patience,
plateau decay), training checkpoints (weights, optimiser, RNG; exact resume), weights-only
checkpoints, and the averaging of a run's epoch checkpoints (mt/checkpoint.py knows the file layout)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mt import checkpoint as ckpt
from mt.config import TrainConfig
from mt.errors import MTError


@dataclass
class TrainState:
    """Everything besides weights and optimiser that an exact resume needs."""

    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0  # batches done in the current, unfinished epoch
    step: int = 0
    best_bleu: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best (early stopping)
    lr_decays: int = 0  # plateau schedule: decays so far
    train_seconds: float = 0.0

    def end_epoch(self, dev_bleu: float, cfg: TrainConfig) -> tuple[bool, bool]:
        """Book an evaluated epoch: best, patience, plateau decay. Returns (improved, lr decayed)."""
        self.epoch += 1
        self.batch_in_epoch = 0
        if dev_bleu > self.best_bleu:
            self.best_bleu, self.best_epoch, self.bad_epochs = dev_bleu, self.epoch, 0
            return True, False
        self.bad_epochs += 1
        decayed = cfg.schedule == "plateau" and self.bad_epochs % cfg.decay_patience == 0
        self.lr_decays += decayed
        return False, decayed

    def stop_reason(self, cfg: TrainConfig) -> str | None:
        """Why training stops after this epoch ("early stopping", "time limit", "epochs"), or None."""
        if cfg.patience and self.bad_epochs >= cfg.patience:
            return "early stopping"
        if cfg.max_minutes and self.train_seconds >= cfg.max_minutes * 60:
            return "time limit"
        if self.epoch >= cfg.epochs:
            return "epochs"
        return None


def save_training(path: Path, model, optimizer, state: TrainState, meta_base: dict) -> None:
    tensors = ckpt.model_tensors(model.state_dict())
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


def restore_training(path: Path, model, optimizer, dev: torch.device) -> TrainState:
    if not path.exists():
        raise MTError(f"cannot resume: {path} does not exist")
    tensors, meta = ckpt.load(path)
    model.load_state_dict(ckpt.model_weights(tensors))
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


def save_weights(path: Path, model, state: TrainState, meta_base: dict) -> None:
    """A checkpoint for inference and averaging: model weights and metadata, no optimiser."""
    ckpt.save_model(path, model.state_dict(), {**meta_base, "trainer": asdict(state)})


def keep_epoch(run: Path, epoch: int, keep: int, model, state: TrainState, meta_base: dict) -> None:
    """Weights-only epoch checkpoints for averaging; keep the last `keep`."""
    save_weights(run / f"epoch-{epoch}.safetensors", model, state, meta_base)
    old = run / f"epoch-{epoch - keep}.safetensors"
    if keep and old.exists():
        old.unlink()


def epoch_checkpoints(run: Path, last: int) -> list[int]:
    """The epochs of the last `last` epoch checkpoints kept in run folder `run`."""
    return sorted(int(p.stem.split("-")[1]) for p in run.glob("epoch-*.safetensors"))[-last:]


def average_run(run: Path, last: int, out: Path | None = None) -> tuple[Path, list[int]]:
    """`mt average`: the last `last` epoch checkpoints of a run averaged into `out` (default: averaged.safetensors)."""
    epochs = epoch_checkpoints(run, last)
    if not epochs:
        raise MTError(f"run {run} has no epoch checkpoints to average")
    weights, meta = ckpt.average([run / f"epoch-{e}.safetensors" for e in epochs])
    out = out or run / "averaged.safetensors"
    ckpt.save_model(out, weights, {**meta, "averaged_epochs": epochs})
    return out, epochs
