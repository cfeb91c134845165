"""Build functions for the checkpoints that notebooks hand to each other.

Each ``build_<stage>(scale)`` trains a model from nothing and returns ``(model, metadata)``; a notebook
calls it through ``helpers.artifacts.load_or_build`` so that it runs alone even when the notebook that
normally produces the checkpoint has not been run. Sizes come from ``helpers.scale``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import torch

from helpers import (
    artifacts,
    bpe,
    chat,
    cleaning,
    data,
    dpo,
    knowledge,
    miniweb,
    ngram,
    ppo,
    reward,
    sampling,
    sft,
    train,
)
from helpers import device as devices
from helpers import scale as scales
from helpers import tokenizer as tok
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


# --- notebook 05: the clean mini-web, the course tokenizer and the base model -----------------------------------

CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")  # reserved now for notebook 08's chat format
SPECIAL_TOKENS = (tok.BOS, tok.EOS, tok.PAD, *CHAT_TOKENS)
TOKENIZER_VOCAB = {"smoke": 512, "cpu": 2048, "gpu": 4096}  # vocabulary sizes, specials included
REFERENCE_SEEDS = (1000, 2000)  # trusted pages for the perplexity filter: one world to train on, one to set the bar


def quality_model(scale: str) -> tuple[ngram.CountLM, float]:
    """Notebook 01's character n-gram model trained on trusted text (the first 90% of Tiny Shakespeare and
    clean pages of a separately seeded mini-web), and the perplexity threshold: the 99th percentile of its bits
    per character on clean pages of a third world (whose names it has never seen, like the crawl's)."""
    shakespeare = data.load_text("tinyshakespeare")
    pages = scales.pick(smoke=150, cpu=1500, gpu=3000, scale=scale)
    fit, held = ([miniweb.clean_text(d) for d in miniweb.generate(
        dataclasses.replace(miniweb.SIZES[scale], seed=seed, pages=pages), shakespeare) if d.kind in miniweb.GOOD_KINDS]
        for seed in REFERENCE_SEEDS)
    model = cleaning.reference_model(fit + [shakespeare[:int(len(shakespeare) * 0.9)]])
    return model, cleaning.perplexity_threshold(model, held)


def clean_web(scale: str) -> tuple[list[miniweb.Document], list[cleaning.Step]]:
    """The crawl of ``scale`` through the cleaning pipeline: (clean documents, the steps with what each removed)."""
    crawl = miniweb.generate(miniweb.SIZES[scale])
    model, threshold = quality_model(scale)
    steps = cleaning.pipeline(crawl, model, threshold)
    return steps[-1].kept, steps


def tokenizer_path(scale: str) -> Path:
    return data.home() / "tokenizers" / f"course_bpe-{artifacts._check_name('scale', scale)}.json"


def build_tokenizer(scale: str, docs: list[miniweb.Document] | None = None) -> tok.Tokenizer:
    """The course BPE: trained on the clean mini-web, digits one per token, special tokens reserved."""
    docs = clean_web(scale)[0] if docs is None else docs
    text = "\n\n".join(d.text for d in docs)
    return bpe.train(text, TOKENIZER_VOCAB[scale], "gpt4-digits", SPECIAL_TOKENS)


def load_tokenizer(scale: str, *, rebuild: bool = False, docs: list[miniweb.Document] | None = None) -> tok.Tokenizer:
    """The course tokenizer of ``scale`` from ``$COURSE_HOME/tokenizers/``, built and saved when missing (from
    ``docs``, the clean web, when the caller has it already; else ``clean_web`` runs)."""
    path = tokenizer_path(scale)
    if path.exists() and not rebuild:
        tokenizer = tok.Tokenizer.load(path)
        missing = [s for s in SPECIAL_TOKENS if s not in tokenizer.special_tokens]
        if missing:
            raise ValueError(f"{path} is not the course tokenizer: it lacks the special tokens {missing}. Delete "
                             f"it, or rebuild it with load_tokenizer({scale!r}, rebuild=True).")
        return tokenizer
    tokenizer = build_tokenizer(scale, docs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tokenizer.save(tmp)
    os.replace(tmp, path)
    return tokenizer


def encode_docs(docs: list[miniweb.Document], tokenizer: tok.Tokenizer) -> torch.Tensor:
    """One long stream of token ids: each document opens with BOS."""
    bos = tokenizer.special_tokens[tok.BOS]
    ids = []
    for doc in docs:
        ids.append(bos)
        ids.extend(tokenizer.encode_ordinary(doc.text))
    return torch.tensor(ids, dtype=torch.long)


def split_docs(docs: list[miniweb.Document], every: int = 20) -> tuple[list, list]:
    """(training documents, held-out documents): every ``every``-th document is held out."""
    return [d for i, d in enumerate(docs) if i % every], docs[::every]


LLAMA = dict(norm="rmsnorm", mlp="swiglu", pos="rope", bias=False)
BASE_SIZES = {  # scale -> (model config without vocab_size, training config)
    "smoke": (GPTConfig(block_size=256, n_layer=1, n_head=2, n_embd=32, **LLAMA),
              train.TrainConfig(max_steps=30, batch_size=8, learning_rate=1e-2, warmup_steps=4, eval_interval=10,
                                eval_iters=2)),
    "cpu": (GPTConfig(block_size=256, n_layer=4, n_head=4, n_embd=128, **LLAMA),
            train.TrainConfig(max_steps=1200, batch_size=16, learning_rate=3e-3, warmup_steps=60,
                              eval_interval=100, eval_iters=8)),
    "gpu": (GPTConfig(block_size=512, n_layer=8, n_head=8, n_embd=512, **LLAMA),
            train.TrainConfig(max_steps=4000, batch_size=64, learning_rate=1e-3, warmup_steps=200,
                              eval_interval=250, eval_iters=20)),
}


SAMPLE_AT = (0.0, 0.05, 0.2, 1.0)  # fractions of training after which build_base draws a sample


def sample_text(model: GPT, tokenizer: tok.Tokenizer, tokens: int = 80, seed: int = 0) -> str:
    """What ``model`` writes from the <|bos|> token alone (temperature 0.8, a fixed seed)."""
    device = next(model.parameters()).device
    idx = torch.tensor([[tokenizer.special_tokens[tok.BOS]]], device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    out = sampling.generate(model, idx, tokens, temperature=0.8, generator=gen)
    return tokenizer.decode(out[0, 1:].tolist())


def build_base(scale: str, *, seed: int = 1337, progress: bool = True,
               docs: list[miniweb.Document] | None = None) -> tuple[GPT, dict]:
    """The course's base model: the LLaMA-switch GPT pretrained on the clean mini-web with the course tokenizer.

    It trains in segments, drawing a sample after each (``SAMPLE_AT``), through a resume file under
    ``$COURSE_HOME/runs/``: a build that was stopped continues where it stopped when called again."""
    model_config, train_config = scales.pick(**BASE_SIZES, scale=scale)
    docs = clean_web(scale)[0] if docs is None else docs  # the clean web, cleaned once
    tokenizer = load_tokenizer(scale, docs=docs)
    train_docs, val_docs = split_docs(docs)
    train_tokens, val_tokens = encode_docs(train_docs, tokenizer), encode_docs(val_docs, tokenizer)
    devices.seed_everything(seed)
    model = GPT(dataclasses.replace(model_config, vocab_size=tokenizer.vocab_size))
    device = devices.pick_device()
    resume = data.home() / "runs" / f"base-{artifacts._check_name('scale', scale)}.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    samples = []  # [step, text]
    for fraction in SAMPLE_AT:
        stop = round(fraction * train_config.max_steps)
        history = train.train(model, train_tokens, val_tokens, train_config, device=device, seed=seed,
                              progress=progress, compile=device.type == "cuda", checkpoint=resume,
                              stop_after=stop) if stop > 0 else train.History()
        done = history.step[-1] + 1 if history.step else 0
        if not samples or samples[-1][0] != done:
            samples.append([done, sample_text(model, tokenizer, seed=seed)])
    resume.unlink()  # the finished model is saved as the `base` checkpoint; the resume file has served
    metadata = {
        "stage": "base", "scale": scale, "tokenizer": str(tokenizer_path(scale)),
        "tokenizer_sha256": data.sha256_of(tokenizer_path(scale)), "val_loss": history.val_loss[-1],
        "train_tokens": len(train_tokens), "steps": len(history.step), "train_seconds": history.seconds,
        "tokens_per_s": history.tokens_per_s, "device": str(device), "samples": samples,
        "history": {"step": history.step, "train_loss": history.train_loss,
                    "eval_step": history.eval_step, "val_loss": history.val_loss},
    }
    return model.cpu().eval(), metadata


SFT_SIZES = {  # scale -> (training examples per task family, training config); the model is the base model's
    "smoke": (8, train.TrainConfig(max_steps=10, batch_size=8, learning_rate=1e-3, warmup_steps=2, weight_decay=0.0,
                                   eval_interval=5, eval_iters=1)),
    "cpu": (400, train.TrainConfig(max_steps=600, batch_size=16, learning_rate=1e-3, warmup_steps=10,
                                   weight_decay=0.0, eval_interval=50, eval_iters=4)),
    "gpu": (2000, train.TrainConfig(max_steps=1500, batch_size=64, learning_rate=3e-4, warmup_steps=50,
                                    weight_decay=0.0, eval_interval=100, eval_iters=10)),
}
SFT_SEEDS = {"train": 0, "held_out": 1}  # tasks seeds of the instruction mixture; notebooks test on others


def sft_data(scale: str, tokenizer: tok.Tokenizer, block_size: int, n: int | None = None):
    """(training, held-out) rendered conversations of the instruction mixture at ``scale``."""
    n = scales.pick(**SFT_SIZES, scale=scale)[0] if n is None else n
    world = miniweb.SIZES[scale].world()
    train_rows = sft.render_examples(chat.instruction_mixture(n, seed=SFT_SEEDS["train"], world=world), tokenizer,
                                     block_size)
    held_out = sft.render_examples(chat.instruction_mixture(max(4, n // 10), seed=SFT_SEEDS["held_out"],
                                                            world=world), tokenizer, block_size)
    return train_rows, held_out


def build_sft(scale: str, *, seed: int = 1337, progress: bool = True) -> tuple[GPT, dict]:
    """The SFT model: the base model fine-tuned (every weight) on the instruction mixture, loss on the answers."""
    _, train_config = scales.pick(**SFT_SIZES, scale=scale)
    device = devices.pick_device()
    model, base_meta = artifacts.load_or_build("base", scale, build_base, device=device)
    tokenizer = load_tokenizer(scale)
    train_rows, held_out = sft_data(scale, tokenizer, model.config.block_size)
    devices.seed_everything(seed)
    return _finetune_stage("sft", scale, model, base_meta, train_rows, held_out, train_config,
                           tokenizer.special_tokens[tok.PAD], device, seed, progress)


def _finetune_stage(stage: str, scale: str, model: GPT, base_meta: dict, rows: list, held_out: list,
                    config: train.TrainConfig, pad_id: int, device, seed: int, progress: bool) -> tuple[GPT, dict]:
    """Fine-tune ``model`` on rendered ``rows`` (answer-only loss) and return it with the stage's metadata."""
    history = sft.finetune(model, rows, held_out, config, pad_id, device=device, seed=seed, progress=progress)
    metadata = {
        "stage": stage, "scale": scale, "base_val_loss": base_meta["val_loss"], "examples": len(rows),
        "val_loss": history.val_loss[-1], "steps": len(history.step), "train_seconds": history.seconds,
        "device": str(device), "tokenizer_sha256": data.sha256_of(tokenizer_path(scale)),
        "history": {"step": history.step, "train_loss": history.train_loss,
                    "eval_step": history.eval_step, "val_loss": history.val_loss},
    }
    return model.cpu().eval(), metadata


READER_SIZES = {  # scale -> training config of the reading fine-tune (one fresh exercise per row: steps x batch)
    "smoke": train.TrainConfig(max_steps=4, batch_size=4, learning_rate=2e-3, warmup_steps=1, weight_decay=0.0,
                               eval_interval=2, eval_iters=1),
    "cpu": train.TrainConfig(max_steps=1200, batch_size=16, learning_rate=2e-3, warmup_steps=10, weight_decay=0.0,
                             eval_interval=100, eval_iters=4),
    "gpu": train.TrainConfig(max_steps=2000, batch_size=32, learning_rate=1e-3, warmup_steps=50, weight_decay=0.0,
                             eval_interval=200, eval_iters=10),
}
READER_SEEDS = {"train": 0, "held_out": 1}  # seeds of knowledge.reader_rows


def build_reader(scale: str, *, seed: int = 1337, progress: bool = True) -> tuple[GPT, dict]:
    """The reader (notebook 11): the base model fine-tuned on reading exercises about invented people (passages,
    then questions answered by copying from them; ``knowledge.reader_rows``), loss on the answers. The web's
    comprehension pages were meant to teach this in pretraining; at ``cpu`` scale they do not (notebook 11
    measures it), so this short stage does. No fact of the fact table is in its data."""
    config = scales.pick(**READER_SIZES, scale=scale)
    device = devices.pick_device()
    model, base_meta = artifacts.load_or_build("base", scale, build_base, device=device)
    tokenizer = load_tokenizer(scale)
    world = miniweb.SIZES[scale].world()
    block = model.config.block_size
    rows = knowledge.reader_rows(tokenizer, world, config.max_steps * config.batch_size, READER_SEEDS["train"],
                                 block_size=block)
    held_out = knowledge.reader_rows(tokenizer, world, 4 * config.batch_size, READER_SEEDS["held_out"],
                                     block_size=block)
    devices.seed_everything(seed)
    return _finetune_stage("reader", scale, model, base_meta, rows, held_out, config,
                           tokenizer.special_tokens[tok.PAD], device, seed, progress)


REWARD_SIZES = {  # scale -> (training prompts, held-out prompts, answers per prompt K, training config)
    "smoke": (6, 4, 3, train.TrainConfig(max_steps=6, batch_size=4, learning_rate=1e-4, warmup_steps=1,
                                         weight_decay=0.0, grad_clip=1.0)),
    "cpu": (600, 100, 4, train.TrainConfig(max_steps=300, batch_size=16, learning_rate=1e-4, warmup_steps=20,
                                           weight_decay=0.0, grad_clip=1.0)),
    "gpu": (3000, 400, 4, train.TrainConfig(max_steps=1500, batch_size=32, learning_rate=1e-4, warmup_steps=50,
                                            weight_decay=0.0, grad_clip=1.0)),
}
REWARD_SEEDS = {"train": 100, "held_out": 101}  # review_requests seeds (08's instruction mixture used 0 and 1)
ANNOTATORS = {  # "A" ranks the training answers; "B", with its own seed and scale, the held-out ones
    "A": dict(noise=1.0, offset=4.0, spread=0.8, seed=1),
    "B": dict(noise=1.0, offset=3.0, spread=1.2, seed=2),
}


def preference_data(scale: str, model: GPT, tokenizer: tok.Tokenizer) -> tuple[list[dict], list[dict]]:
    """(training, held-out) records of ``reward.collect_answers``: K answers of ``model`` (the SFT model) to review
    requests, with annotator A's readings of both under ``"A"`` and annotator B's of the held-out ones under ``"B"``."""
    n_train, n_held, k, _ = scales.pick(**REWARD_SIZES, scale=scale)
    train_records, held_records = (
        reward.collect_answers(model, tokenizer, chat.review_requests(n, seed=REWARD_SEEDS[part]), k,
                               seed=REWARD_SEEDS[part] * 10_000)
        for part, n in (("train", n_train), ("held_out", n_held)))
    a, b = reward.Annotator(**ANNOTATORS["A"]), reward.Annotator(**ANNOTATORS["B"])
    for who, annotator, records in (("A", a, train_records), ("A", a, held_records), ("B", b, held_records)):
        for record, readings in zip(records, reward.annotate(records, annotator)):
            record[who] = readings
    return train_records, held_records


def build_reward_model(scale: str, *, seed: int = 1337, progress: bool = True) -> tuple[reward.RewardModel, dict]:
    """The reward model: the SFT model's trunk with a scalar head, trained on annotator A's rankings of the SFT
    model's own answers (every weight; the pairwise loss without a margin). Its metadata carries the preference
    data (notebook 10's DPO trains on the same pairs) and the held-out accuracy against annotator B."""
    *_, train_config = scales.pick(**REWARD_SIZES, scale=scale)
    device = devices.pick_device()
    sft_model, _ = artifacts.load_or_build("sft", scale, build_sft, device=device)
    tokenizer = load_tokenizer(scale)
    time0 = time.perf_counter()
    train_records, held_records = preference_data(scale, sft_model, tokenizer)
    sample_seconds = time.perf_counter() - time0
    devices.seed_everything(seed)
    rm = reward.RewardModel.from_language_model(sft_model.cpu())
    pairs = reward.preference_pairs(train_records, [r["A"] for r in train_records])
    time0 = time.perf_counter()
    losses = reward.train_reward_model(rm, tokenizer, pairs, train_config, seed=seed, device=device)
    train_seconds = time.perf_counter() - time0
    held = reward.preference_pairs(held_records, [r["B"] for r in held_records])
    chosen = reward.score(rm, tokenizer, [p.prompt for p in held], [p.chosen for p in held])
    rejected = reward.score(rm, tokenizer, [p.prompt for p in held], [p.rejected for p in held])
    metadata = {
        "stage": "reward", "scale": scale, "pairs": len(pairs), "held_out_pairs": len(held),
        "held_out_accuracy": reward.pairwise_accuracy(chosen, rejected), "losses": losses,
        "sample_seconds": sample_seconds, "train_seconds": train_seconds, "device": str(device),
        "tokenizer_sha256": data.sha256_of(tokenizer_path(scale)),
        "preferences": train_records, "held_out": held_records,
    }
    return rm.cpu().eval(), metadata


# --- notebook 10: PPO against the reward model, and DPO on its preference pairs ----------------------------------

PPO_SIZES = {  # scale -> (config, iterations, prompts per iteration, answers per prompt, max answer tokens)
    "smoke": (ppo.PPOConfig(learning_rate=5e-4, ppo_epochs=1, minibatch_size=4), 3, 2, 2, 8),
    "cpu": (ppo.PPOConfig(learning_rate=5e-4, ppo_epochs=4, minibatch_size=16), 80, 8, 4, 36),
    "gpu": (ppo.PPOConfig(learning_rate=2e-4, ppo_epochs=4, minibatch_size=64), 300, 32, 4, 36),
}


def reward_scorer(rm: reward.RewardModel, tokenizer: tok.Tokenizer, records: list[dict]):
    """``score_fn(prompts, answers)``: the reward model's score, shifted and scaled so that the SFT model's answers
    in ``records`` (the reward stage's held-out ones) have mean 0 and spread 1, as InstructGPT normalised its
    reward model before PPO. Also returns the (mean, spread) it used."""
    raw = reward.score(rm, tokenizer, [reward.example_of(r).prompt for r in records for _ in r["answers"]],
                       [a for r in records for a in r["answers"]])
    mean, spread = raw.mean().item(), raw.std().item()
    return (lambda prompts, answers: (reward.score(rm, tokenizer, prompts, answers) - mean) / spread), (mean, spread)


def ppo_run(scale: str, kl_coef: float | None = None, iterations: int | None = None, *, seed: int = 1337,
            progress: bool = True) -> tuple[ppo.PolicyWithValue, dict]:
    """PPO from the SFT model against the (normalised) reward model on the reward stage's training requests, with
    the gold reward recorded (never optimised). ``kl_coef`` and ``iterations`` override ``PPO_SIZES``."""
    config, n_iter, per_iter, samples, max_new = scales.pick(**PPO_SIZES, scale=scale)
    config = dataclasses.replace(config, kl_coef=config.kl_coef if kl_coef is None else kl_coef)
    device = devices.pick_device()
    sft_model, _ = artifacts.load_or_build("sft", scale, build_sft, device=device)
    rm, rm_meta = artifacts.load_or_build("reward", scale, build_reward_model, device=device)
    tokenizer = load_tokenizer(scale)
    score_fn, (mean, spread) = reward_scorer(rm, tokenizer, rm_meta["held_out"])
    requests = [reward.example_of(r) for r in rm_meta["preferences"]]
    devices.seed_everything(seed)
    model = ppo.PolicyWithValue.from_language_model(sft_model).to(device)
    history = ppo.train_ppo(model, sft_model, tokenizer, [e.prompt for e in requests], score_fn, config,
                            n_iter if iterations is None else iterations, prompts_per_iteration=per_iter,
                            samples_per_prompt=samples, max_new_tokens=max_new, seed=seed, progress=progress,
                            gold_fn=lambda rows, answers: [reward.gold_reward(requests[i], a)
                                                           for i, a in zip(rows, answers)])
    metadata = {"scale": scale, "kl_coef": config.kl_coef, "config": dataclasses.asdict(config),
                "reward_mean": mean, "reward_spread": spread, "history": history, "device": str(device),
                "tokenizer_sha256": data.sha256_of(tokenizer_path(scale))}
    return model.cpu().eval(), metadata


def build_ppo(scale: str, *, seed: int = 1337, progress: bool = True) -> tuple[GPT, dict]:
    """The RLHF model: PPO with the KL penalty of ``PPO_SIZES`` (checkpoint ``ppo``: the policy, without the value
    head; its metadata carries the curves)."""
    model, metadata = ppo_run(scale, seed=seed, progress=progress)
    return model.policy, {"stage": "ppo", **metadata}


DPO_SIZES = {  # scale -> (beta, smallest margin level of a pair kept, training config)
    "smoke": (0.1, 1 / 3, train.TrainConfig(max_steps=4, batch_size=4, learning_rate=1e-4, warmup_steps=1,
                                            weight_decay=0.0)),
    "cpu": (0.1, 1 / 3, train.TrainConfig(max_steps=300, batch_size=16, learning_rate=1e-4, warmup_steps=10,
                                          weight_decay=0.0)),
    "gpu": (0.1, 1 / 3, train.TrainConfig(max_steps=1500, batch_size=32, learning_rate=5e-5, warmup_steps=50,
                                          weight_decay=0.0)),
}


def build_dpo(scale: str, *, seed: int = 1337, progress: bool = True) -> tuple[GPT, dict]:
    """DPO from the SFT model on the reward stage's preference pairs (annotator A's rankings of the SFT model's
    answers), against the frozen SFT model; pairs whose annotator was only "negligibly" sure are left out."""
    beta, min_margin, config = scales.pick(**DPO_SIZES, scale=scale)
    device = devices.pick_device()
    sft_model, _ = artifacts.load_or_build("sft", scale, build_sft, device=device)
    _, rm_meta = artifacts.load_or_build("reward", scale, build_reward_model, device=device)
    tokenizer = load_tokenizer(scale)
    records = rm_meta["preferences"]
    pairs = [p for p in reward.preference_pairs(records, [r["A"] for r in records]) if p.margin >= min_margin - 1e-9]
    devices.seed_everything(seed)
    policy = GPT(sft_model.config).to(device)
    policy.load_state_dict(sft_model.state_dict())
    time0 = time.perf_counter()
    history = dpo.train_dpo(policy, sft_model, tokenizer, pairs, config, beta=beta, seed=seed, device=device)
    metadata = {"stage": "dpo", "scale": scale, "beta": beta, "min_margin": min_margin, "pairs": len(pairs),
                "history": history, "train_seconds": time.perf_counter() - time0, "device": str(device),
                "tokenizer_sha256": data.sha256_of(tokenizer_path(scale))}
    return policy.cpu().eval(), metadata
