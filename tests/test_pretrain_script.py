"""scripts/pretrain.py under torchrun: two CPU processes (gloo) must train exactly what one process does."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import artifacts, distributed, train
from helpers.gpt import GPT

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "pretrain.py"
SIZES = ["--vocab-size", "11", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16"]
RUN = ["--steps", "4", "--batch-size", "8", "--lr", "1e-2", "--warmup-steps", "0", "--log-every", "1", "--seed", "3"]


def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.pt"
    torch.save(torch.randint(0, 11, (2000,), generator=torch.Generator().manual_seed(0)), path)
    return path


def test_two_ranks_train_what_one_process_trains(tmp_path):
    tokens, out = token_file(tmp_path), tmp_path / "model.pt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(SCRIPT),
               "--tokens", str(tokens), "--out", str(out), "--device", "cpu", "--save-all-ranks", *SIZES, *RUN]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, meta = artifacts.load(tmp_path / "model.rank0.pt")
    rank1, _ = artifacts.load(tmp_path / "model.rank1.pt")
    saved, _ = artifacts.load(out)
    for (name, p0), p1, p in zip(rank0.state_dict().items(), rank1.state_dict().values(), saved.state_dict().values()):
        assert torch.equal(p0, p1) and torch.equal(p0, p), name  # DDP keeps the ranks in lockstep
    assert meta["world_size"] == 2 and meta["global_batch_size"] == 8
    # one process, helpers.train on the whole global batch of 8, the same seed for weights and batches
    torch.manual_seed(3)
    alone = GPT(saved.config)
    config = train.TrainConfig(max_steps=4, batch_size=8, learning_rate=1e-2, warmup_steps=0)
    history = train.train(alone, torch.load(tokens), None, config, seed=3, progress=False)
    for (name, p0), p in zip(rank0.state_dict().items(), alone.state_dict().values()):
        torch.testing.assert_close(p0, p, atol=1e-6, rtol=1e-5, msg=name)
    logged = [line for line in done.stdout.splitlines() if line.startswith("step")]
    assert len(logged) == 4 and f"loss {history.train_loss[-1]:.4f}" in logged[-1]  # rank 0 prints the global loss
    assert f"saved {out}" in done.stdout


def load_script():
    spec = importlib.util.spec_from_file_location("pretrain_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_batch_that_does_not_divide_is_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun --nproc_per_node 2 sets
    args = ["--tokens", str(tmp_path / "never-read.pt"), "--out", str(tmp_path / "m.pt"), "--batch-size", "3"]
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(args)
    assert exit_info.value.code == 2
    assert "--batch-size 3 must be a positive multiple of the world size 2" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_rank_rows_split_the_global_batch():
    assert [distributed.rank_rows(8, 4, r) for r in range(4)] == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    with pytest.raises(ValueError, match="batch_size=6 does not divide by world_size=4"):
        distributed.rank_rows(6, 4, 0)
    with pytest.raises(ValueError, match="rank must be an integer in 0..3"):
        distributed.rank_rows(8, 4, 4)


def test_sharded_batches_are_the_rows_of_one_global_batch():
    tokens = torch.arange(100) % 11
    whole = distributed.sharded_batches(tokens, 5, 6, rank=0, world_size=1)(torch.Generator().manual_seed(0))
    parts = [distributed.sharded_batches(tokens, 5, 6, rank=r, world_size=3)(torch.Generator().manual_seed(0))
             for r in range(3)]
    assert torch.equal(torch.cat([x for x, _ in parts]), whole[0]) and parts[0][0].shape == (2, 5)
    assert torch.equal(torch.cat([y for _, y in parts]), whole[1])


def test_mean_across_ranks_without_a_process_group_is_the_value():
    assert distributed.mean_across_ranks(1.25) == 1.25
