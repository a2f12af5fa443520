"""TensorBoard event files in each run folder, beside metrics.jsonl (which stays the source of truth).

Optional (`pip install 'mt-enja[tensorboard]'`): without the package the trainer says so once and goes
on. `tensorboard --logdir experiments/runs` then shows every run side by side, against updates.
Tags follow JoeyNMT/fairseq: train/loss, train/lr, train/grad_norm, train/tokens_per_s per update;
dev/loss, dev/ppl, dev/bleu, dev/chrf, dev/best_bleu per epoch; the config and signatures as text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

INSTALL = "pip install 'mt-enja[tensorboard]'"


class Tracker:
    """Writes TensorBoard scalars for one run; every method is a no-op when TensorBoard is absent or off."""

    def __init__(self, run: Path, enabled: bool, first_step: int, log: Callable[[str], None]) -> None:
        self.writer = None
        if not enabled:
            return
        try:  # lazy: an optional extra, and slow to import
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log(f"TensorBoard not installed: metrics go to metrics.jsonl only ({INSTALL}; "
                f"or train.tensorboard = false to silence this)")
            return
        # purge_step: a resumed run redoes steps after its checkpoint; their old points are dropped
        self.writer = SummaryWriter(log_dir=str(run), purge_step=first_step if first_step > 1 else None)

    def text(self, tag: str, value: str) -> None:
        if self.writer:
            self.writer.add_text(tag, f"```\n{value}\n```", 0)

    def update(self, step: int, loss: float, lr: float, grad_norm: float, tokens_per_s: float) -> None:
        if self.writer:
            for tag, value in (("loss", loss), ("lr", lr), ("grad_norm", grad_norm), ("tokens_per_s", tokens_per_s)):
                self.writer.add_scalar(f"train/{tag}", value, step)

    def epoch(self, record: dict, best_bleu: float) -> None:
        if self.writer:
            step = record["step"]
            scalars = {"loss": record["dev_loss"], "ppl": math.exp(min(record["dev_loss"], 50)),
                       "bleu": record["dev_bleu"], "chrf": record["dev_chrf"], "best_bleu": best_bleu}
            for tag, value in scalars.items():
                self.writer.add_scalar(f"dev/{tag}", value, step)
            self.writer.add_scalar("train/epoch_loss", record["train_loss"], step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()
