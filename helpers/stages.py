"""Build functions for the checkpoints that notebooks hand to each other.

Each ``build_<stage>(scale)`` trains a model from nothing and returns ``(model, metadata)``; a notebook
calls it through ``helpers.artifacts.load_or_build`` so that it runs alone even when the notebook that
normally produces the checkpoint has not been run. Sizes come from ``helpers.scale``.
"""

from __future__ import annotations

import torch

from helpers import data, train
from helpers import device as devices
from helpers import scale as scales
from helpers.gpt import GPT, GPTConfig

CHAR_GPT_SIZES = {  # scale -> (model config without vocab_size, training config)
    "smoke": (GPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=32),
              train.TrainConfig(max_steps=30, batch_size=16, warmup_steps=5, eval_interval=10, eval_iters=2)),
    "cpu": (GPTConfig(block_size=64, n_layer=3, n_head=4, n_embd=128),
            train.TrainConfig(max_steps=1200, batch_size=32, learning_rate=2e-3, warmup_steps=50,
                              eval_interval=100, eval_iters=10)),
    "gpu": (GPTConfig(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
            train.TrainConfig(max_steps=3000, batch_size=64, learning_rate=1e-3, warmup_steps=100,
                              eval_interval=250, eval_iters=20)),
}


def build_char_gpt(scale: str, *, seed: int = 1337, progress: bool = True) -> tuple[GPT, dict]:
    """A character-level GPT trained on Tiny Shakespeare (the model of notebook 00)."""
    model_config, train_config = scales.pick(**CHAR_GPT_SIZES, scale=scale)
    text = data.load_text("tinyshakespeare")
    tokenizer = data.CharTokenizer.from_text(text)
    tokens = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_tokens, val_tokens = data.train_val_split(tokens, 0.1)
    devices.seed_everything(seed)
    model = GPT(GPTConfig(**{**vars(model_config), "vocab_size": tokenizer.vocab_size}))
    device = devices.pick_device()
    history = train.train(model, train_tokens, val_tokens, train_config, device=device, seed=seed,
                          progress=progress)
    metadata = {
        "stage": "char_gpt",
        "scale": scale,
        "chars": "".join(tokenizer.chars),
        "val_loss": history.val_loss[-1],
        "steps": len(history.step),
        "train_seconds": history.seconds,
        "device": str(device),
        "history": {"step": history.step, "train_loss": history.train_loss,
                    "eval_step": history.eval_step, "val_loss": history.val_loss},
    }
    return model.cpu().eval(), metadata
