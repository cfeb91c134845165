"""Data parallelism: N processes train one model as if they were one process on N times the batch.

Under ``torchrun --nproc_per_node N`` each process (a *rank*) holds a full copy of the model. Every step,
all ranks draw the same global batch of B sequences (their batch generators are seeded alike) and rank r
keeps rows ``r*B/N .. (r+1)*B/N``. PyTorch's ``DistributedDataParallel`` averages the gradients across ranks
during the backward pass (an all-reduce), so every rank takes the same optimizer step, and the mean of N
equal-sized shard losses is the loss of the whole batch: N processes compute what one would on B rows
(Li et al., 2020, "PyTorch Distributed").

Simplifications: every rank draws the whole global batch and drops the rows of the others (cheap for random
windows of one token tensor; a real data loader reads only its shard), and there is no sharding of the
optimizer state or of the weights (ZeRO, FSDP): each rank holds all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from helpers import data


def rank_rows(batch_size: int, world_size: int, rank: int) -> slice:
    """The rows of a global batch of ``batch_size`` sequences that ``rank`` of ``world_size`` trains on."""
    for name, value in (("batch_size", batch_size), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in 0..{world_size - 1}, got {rank!r}")
    if batch_size % world_size:
        raise ValueError(f"the global batch_size={batch_size} does not divide by world_size={world_size}: "
                         "each rank needs the same number of rows")
    per_rank = batch_size // world_size
    return slice(rank * per_rank, (rank + 1) * per_rank)


def sharded_batches(
    tokens: torch.Tensor,
    block_size: int,
    batch_size: int,
    *,
    rank: int,
    world_size: int,
    device: torch.device | str = "cpu",
) -> Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """A ``get_batch(generator) -> (x, y)`` for ``helpers.train``: random windows of ``tokens``, this rank's
    rows of a global batch of ``batch_size``. With ``world_size=1`` it draws exactly train()'s own batches."""
    rows = rank_rows(batch_size, world_size, rank)

    def get_batch(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data.get_batch(tokens, block_size, batch_size, generator=generator)  # (B, T) each, on the CPU
        return x[rows].to(device), y[rows].to(device)  # (B / world_size, T) each
    return get_batch


def mean_across_ranks(value: float, device: torch.device | str = "cpu") -> float:
    """The mean of ``value`` over all ranks (every rank must call it); ``value`` itself without a process group.
    Each rank's loss is the mean over its own rows; their mean is the loss of the whole global batch."""
    if not (dist.is_available() and dist.is_initialized()):
        return float(value)
    total = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.item() / dist.get_world_size()
