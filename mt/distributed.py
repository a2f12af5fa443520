"""Data parallelism under torchrun (DDP; gloo on CPU, nccl on GPU); a no-op for one process."""

from __future__ import annotations

import os

import torch
from torch.nn.parallel import DistributedDataParallel


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

    def broadcast(self, value: dict) -> dict:
        """Rank 0's value (a JSON-like dict) on every rank."""
        if self.world == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
