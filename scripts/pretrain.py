"""Pretrain the course GPT data-parallel on several GPUs (or CPU processes) with PyTorch DDP.

    torchrun --nproc_per_node 8 scripts/pretrain.py --tokens train.pt --steps 5000 --batch-size 256 --out base.pt

``--tokens`` is a file written with ``torch.save`` holding one 1-D tensor of token ids. ``--batch-size`` is the
GLOBAL batch: every rank draws the same batch of that many sequences and trains on its share of the rows;
DistributedDataParallel averages the gradients, so N processes take the same steps as one process would on
the whole batch (``helpers.distributed`` explains it). Rank 0 prints the loss and throughput and saves the
model with ``helpers.artifacts.save``. Without torchrun the script runs as a single process.
The model has the LLaMA switches on by default (RMSNorm, SwiGLU, RoPE, no biases, untied output layer).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from helpers import artifacts, distributed, train  # noqa: E402
from helpers.gpt import GPT, GPTConfig  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=Path, required=True, help="torch.save'd 1-D tensor of token ids")
    p.add_argument("--out", type=Path, required=True, help="where rank 0 saves the trained model")
    for name, default in (("n-layer", 4), ("n-head", 4), ("n-embd", 128), ("block-size", 128), ("vocab-size", 65)):
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--norm", default="rmsnorm", choices=("rmsnorm", "layernorm"))
    p.add_argument("--mlp", default="swiglu", choices=("swiglu", "gelu"))
    p.add_argument("--pos", default="rope", choices=("rope", "learned"))
    p.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=64, help="GLOBAL sequences per step, split across ranks")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10, help="print every this many steps (rank 0)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--save-all-ranks", action="store_true", help="also save each rank's weights as OUT.rankR.pt")
    args = p.parse_args(argv)
    for name in ("steps", "log_every", "n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    if args.batch_size < 1 or args.batch_size % world_size:
        p.error(f"--batch-size {args.batch_size} must be a positive multiple of the world size {world_size} "
                "(the number of processes): each rank trains on an equal share of the global batch")
    return args


def load_tokens(path: Path) -> torch.Tensor:
    tokens = torch.load(path, weights_only=True)
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.is_floating_point():
        raise SystemExit(f"--tokens {path} must hold one 1-D integer tensor of token ids (torch.save(ids, path))")
    return tokens.long()


def build_model(args: argparse.Namespace) -> GPT:
    config = GPTConfig(vocab_size=args.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, norm=args.norm, mlp=args.mlp, pos=args.pos,
                       bias=args.bias, tie_weights=args.tie_weights)
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also copies rank 0's)
    return GPT(config)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if use_cuda else "cpu")
    if use_cuda:
        if device.index >= torch.cuda.device_count():
            raise SystemExit(f"rank {rank} needs GPU {device.index}, but this machine has {torch.cuda.device_count()}: "
                             "start at most one process per GPU, or pass --device cpu")
        torch.cuda.set_device(device)  # one GPU per rank, also for NCCL's own buffers
    if world_size > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    tokens, model = load_tokens(args.tokens), build_model(args).to(device)
    net = DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None) if world_size > 1 else model
    train_config = train.TrainConfig(max_steps=args.steps, batch_size=args.batch_size // world_size,
                                     learning_rate=args.lr, warmup_steps=args.warmup_steps)
    optimizer = train.make_optimizer(model, train_config)
    generator = torch.Generator().manual_seed(args.seed)  # seeded alike on every rank: the same global batches
    get_batch = distributed.sharded_batches(tokens, args.block_size, args.batch_size, rank=rank,
                                            world_size=world_size, device=device)
    for step in range(args.steps):
        start = time.perf_counter()
        loss, _, step_tokens = train.optimizer_step(net, optimizer, get_batch, generator,
                                                    train.lr_at(step, train_config), train_config, device)
        loss = distributed.mean_across_ranks(loss, device)  # the loss of the whole global batch
        if not math.isfinite(loss):
            raise SystemExit(f"rank {rank}: the loss became {loss} at step {step}; try a lower --lr")
        if rank == 0 and (step % args.log_every == 0 or step == args.steps - 1):
            tokens_per_s = step_tokens * world_size / (time.perf_counter() - start)
            print(f"step {step:5d}  loss {loss:.4f}  {tokens_per_s:,.0f} tokens/s", flush=True)
    metadata = {"steps": args.steps, "world_size": world_size, "global_batch_size": args.batch_size,
                "final_loss": loss}
    if rank == 0:
        print(f"saved {artifacts.save(model, args.out, metadata)}", flush=True)
    if args.save_all_ranks:
        artifacts.save(model, args.out.with_suffix(f".rank{rank}.pt"), metadata)
    if world_size > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
