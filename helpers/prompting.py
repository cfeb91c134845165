"""Few-shot prompting of the base model, measured: k-shot prompts, label-word scoring, calibration, soft prompts.

A classification prompt is a few solved examples ("shots") in one template, then the query with its label left
blank. The model's answer is read from its probabilities, never sampled: ``label_logprobs`` gives the
log-probability of each candidate label word after the prompt, and the prediction is the most likely word
(Brown et al., 2020, score multiple-choice tasks this way).

- ``sentiment_pool``: reviews with their true sentiment, from ``helpers.tasks`` (never from the web's seed).
- ``k_shot_prompt`` / ``draw_shots``: the prompt, with shots drawn at random or in a given order of labels.
- ``label_logprobs`` / ``predict`` / ``accuracy``: scoring; label words of several tokens are summed.
- ``calibrate``: contextual calibration (Zhao et al., 2021): divide the label probabilities by those the
  same prompt gives a content-free input ("N/A"), then renormalise. The paper applies a softmax to the same
  rescaled vector; the predicted label is the same either way.
- ``SoftPrompt`` / ``train_labels``: prompt tuning (Lester et al., 2021): n trainable vectors in front of the
  frozen model's embeddings, trained on the label words. ``train_labels`` also fine-tunes a whole model
  (no soft prompt), so the two are compared under one loss.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn

from helpers import lm, tasks
from helpers import tokenizer as tok
from helpers.miniweb import HELDOUT_LABEL_PAIRS, LABEL_PAIRS, LISTING_FORMATS

TEMPLATE = LISTING_FORMATS[1]  # "Review: {review}\nSentiment: {label}"
ALL_LABEL_WORDS = tuple(word for pair in LABEL_PAIRS + HELDOUT_LABEL_PAIRS for word in pair)
CONTENT_FREE = ("N/A", "", "[MASK]")  # inputs that carry no sentiment (Zhao et al., 2021)


def sentiment_pool(n: int, seed: int = 0, max_sentences: int = 3) -> list[tuple[str, int]]:
    """``n`` reviews (text, sentiment +1/-1) of the ``sentiment`` task family, at most ``max_sentences`` long
    (short shots: eight of them fit in the cpu model's 256-token window). Seeds differ from the web's."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    pool, batch = [], 0
    while len(pool) < n:
        for example in tasks.make_examples("sentiment", 4 * n, seed=seed * 1000 + batch, split="all"):
            review = example.truth["review"]
            if review.count(".") <= max_sentences and len(pool) < n:
                pool.append((review, example.truth["sentiment"]))
        batch += 1
    return pool


def _check_template(template: str) -> str:
    if not isinstance(template, str) or "{review}" not in template or not template.endswith(" {label}"):
        raise ValueError(f"template must contain '{{review}}' and end with ' {{label}}', got {template!r}")
    return template


def _check_labels(labels) -> tuple[str, str]:
    if (not isinstance(labels, (tuple, list)) or len(labels) != 2
            or not all(isinstance(x, str) and x.strip() and " " not in x for x in labels) or labels[0] == labels[1]):
        raise ValueError(f"labels must be two different words (positive, negative), got {labels!r}")
    return tuple(labels)


def label_word(sentiment: int, labels: Sequence[str]) -> str:
    """The word for a sentiment: ``labels[0]`` for +1, ``labels[1]`` for -1."""
    if sentiment not in (1, -1):
        raise ValueError(f"sentiment must be +1 or -1, got {sentiment!r}")
    return labels[0] if sentiment > 0 else labels[1]


def k_shot_prompt(shots: Sequence[tuple[str, int]], query: str, labels: Sequence[str] = LABEL_PAIRS[0],
                  template: str = TEMPLATE, separator: str = "\n") -> str:
    """The shots (review, sentiment) written with their label words, then ``query`` with the label left blank.

    The prompt ends just before the label, without the space: the model's next token is " positive", say."""
    template, labels = _check_template(template), _check_labels(labels)
    lines = [template.format(review=text, label=label_word(s, labels)) for text, s in shots]
    lines.append(template.format(review=query, label="").rstrip())
    return separator.join(lines)


def draw_shots(pool: Sequence[tuple[str, int]], k: int, rng: random.Random, order: str | None = None,
               exclude: str | None = None) -> list[tuple[str, int]]:
    """``k`` shots from ``pool``: random labels when ``order`` is None, else exactly the labels of ``order``, a
    string of "+" and "-" of length ``k`` (e.g. "++--"). ``exclude`` (the query) is never a shot."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a whole number >= 0, got {k!r}")
    if order is not None and (len(order) != k or set(order) - {"+", "-"}):
        raise ValueError(f"order must be {k} characters of '+' and '-', got {order!r}")
    candidates = [shot for shot in pool if shot[0] != exclude]
    if order is None:
        if k > len(candidates):
            raise ValueError(f"pool has {len(candidates)} usable shots, fewer than k={k}")
        return rng.sample(candidates, k)
    by_sign = {sign: [s for s in candidates if s[1] == (1 if sign == "+" else -1)] for sign in "+-"}
    for sign in "+-":
        if order.count(sign) > len(by_sign[sign]):
            raise ValueError(f"pool has {len(by_sign[sign])} shots labelled {sign!r}, fewer than order asks")
    picked = {sign: rng.sample(by_sign[sign], order.count(sign)) for sign in "+-"}
    return [picked[sign].pop() for sign in order]


@torch.no_grad()
def label_logprobs(model: nn.Module, tokenizer: tok.Tokenizer, prompts: Sequence[str], words: Sequence[str],
                   batch_size: int = 16, prefix: torch.Tensor | None = None) -> torch.Tensor:
    """(len(prompts), len(words)) log-probabilities of " word" right after each prompt (BOS in front).

    A word of several tokens gets the sum of its tokens' log-probabilities. Prompts are right-padded in
    batches; a causal model never looks at the padding, so the scores equal one prompt at a time."""
    if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("prompts must be a non-empty list of strings")
    if isinstance(words, str) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise ValueError(f"words must be a non-empty list of label words, got {words!r}")
    bos = tokenizer.special_tokens[tok.BOS]
    word_ids = [tokenizer.encode_ordinary(" " + w) for w in words]
    longest = max(len(ids) for ids in word_ids)
    device = next(model.parameters()).device
    limit = model.config.block_size - (0 if prefix is None else prefix.size(-2))
    out = torch.empty(len(prompts), len(words))
    with lm.eval_mode(model):
        for start in range(0, len(prompts), batch_size):
            chunk = [[bos] + tokenizer.encode_ordinary(p) for p in prompts[start:start + batch_size]]
            for i, ids in enumerate(chunk):
                if len(ids) + longest - 1 > limit:
                    raise ValueError(f"prompt {start + i} is {len(ids)} tokens with BOS; with its label it must "
                                     f"fit in {limit} (block_size): use fewer or shorter shots")
            # one row per (prompt, distinct word start): the prompt followed by all of a word's tokens but the
            # last. Every one-token word shares the row of the bare prompt.
            starts = sorted({tuple(w[:-1]) for w in word_ids}, key=len)
            rows = [ids + list(s) for ids in chunk for s in starts]
            idx = torch.tensor(tok.pad(rows, 0)[0], device=device)  # right padding, never looked at
            logits = model(idx, prefix=prefix)[0]  # (rows, T, V)
            where = [(i * len(starts) + starts.index(tuple(w[:-1])), len(ids) - 1 + n, t, i, j)
                     for i, ids in enumerate(chunk) for j, w in enumerate(word_ids) for n, t in enumerate(w)]
            r, pos, t, i, j = (torch.tensor(column, device=device) for column in zip(*where))
            logp = torch.log_softmax(logits[r, pos].float(), dim=-1).gather(1, t[:, None])[:, 0]  # one per token
            scores = torch.zeros(len(chunk), len(words), device=device).index_put_((i, j), logp, accumulate=True)
            out[start:start + len(chunk)] = scores.cpu()
    return out


def predict(scores: torch.Tensor) -> torch.Tensor:
    """The index of the best-scoring label in each row of (n, L) scores (log-probabilities or probabilities)."""
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2 or scores.size(1) < 2:
        raise ValueError(f"scores must be a (n, L) tensor with L >= 2, got {getattr(scores, 'shape', scores)!r}")
    return scores.argmax(dim=1)


def accuracy(predictions: torch.Tensor, truth: Sequence[int] | torch.Tensor) -> float:
    """The share of predictions equal to ``truth`` (label indices)."""
    truth = torch.as_tensor(truth)
    if predictions.shape != truth.shape or predictions.numel() == 0:
        raise ValueError(f"predictions and truth must have the same non-empty shape, got "
                         f"{tuple(predictions.shape)} and {tuple(truth.shape)}")
    return (predictions == truth).float().mean().item()


def label_probs(logprobs: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the label words -> probabilities renormalised over those words only."""
    return torch.softmax(logprobs, dim=-1)


def calibrate(probs: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Contextual calibration: ``probs`` (n, L) divided by the content-free probabilities (L,) or (n, L) of
    the same prompts, renormalised. A prompt that leans to one label even with no input is set straight."""
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2:
        raise ValueError(f"probs must be a (n, L) tensor, got {getattr(probs, 'shape', type(probs).__name__)}")
    if content_free.shape not in ((probs.size(1),), probs.shape):
        raise ValueError(f"content_free must have shape ({probs.size(1)},) or {tuple(probs.shape)}, "
                         f"got {tuple(content_free.shape)}")
    if bool((content_free <= 0).any()):
        raise ValueError("content_free probabilities must all be > 0")
    scaled = probs / content_free
    return scaled / scaled.sum(dim=-1, keepdim=True)


class SoftPrompt(nn.Module):
    """``n`` trainable vectors placed in front of a frozen model's token embeddings (``GPT.forward(prefix=)``).

    Initialised from the embeddings of ``n`` random vocabulary tokens, which Lester et al. found trains
    better than random vectors."""

    def __init__(self, model: nn.Module, n: int, seed: int = 0):
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        rows = torch.randint(0, model.config.vocab_size, (n,), generator=torch.Generator().manual_seed(seed))
        self.vectors = nn.Parameter(model.wte.weight.detach()[rows].clone())

    def forward(self) -> torch.Tensor:
        return self.vectors  # (n, C)


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Run the body with every parameter of ``model`` frozen; afterwards restore their ``requires_grad``."""
    before = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), before):
            p.requires_grad_(flag)


def label_batch(tokenizer: tok.Tokenizer, prompts: Sequence[str], answers: Sequence[str]
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, targets) for training on the answers alone: BOS + prompt + " answer", right-padded, with target
    IGNORE_INDEX everywhere except at the answer's tokens."""
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(f"prompts and answers must be non-empty and of the same length, got "
                         f"{len(prompts)} and {len(answers)}")
    bos = tokenizer.special_tokens[tok.BOS]
    rows, targets = [], []
    for prompt, answer in zip(prompts, answers):
        p, a = [bos] + tokenizer.encode_ordinary(prompt), tokenizer.encode_ordinary(" " + answer)
        rows.append(p + a[:-1])
        targets.append([lm.IGNORE_INDEX] * (len(p) - 1) + a)
    return torch.tensor(tok.pad(rows, 0)[0]), torch.tensor(tok.pad(targets, lm.IGNORE_INDEX)[0])


def train_labels(model: nn.Module, tokenizer: tok.Tokenizer, prompts: Sequence[str], answers: Sequence[str], *,
                 soft_prompt: SoftPrompt | None = None, steps: int = 100, lr: float = 1e-3, batch_size: int = 16,
                 seed: int = 0) -> dict:
    """Train on the answer tokens of (prompt, answer) pairs with AdamW; return {"losses", "seconds", "trained"}.

    With ``soft_prompt`` only its vectors learn and ``model`` stays frozen (prompt tuning); without it every
    parameter of ``model`` learns (full fine-tuning). ``trained`` is the number of parameters updated."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    params = list(soft_prompt.parameters()) if soft_prompt is not None else list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng, device = random.Random(seed), next(model.parameters()).device
    order, losses, begin = list(range(len(prompts))), [], time.perf_counter()
    context = frozen(model) if soft_prompt is not None else contextlib.nullcontext()
    was_training = model.training
    with context:
        model.train()
        for _ in range(steps):
            picks = rng.sample(order, min(batch_size, len(order)))
            ids, targets = label_batch(tokenizer, [prompts[i] for i in picks], [answers[i] for i in picks])
            prefix = soft_prompt() if soft_prompt is not None else None
            _, loss = model(ids.to(device), targets.to(device), prefix=prefix)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.train(was_training)
    return {"losses": losses, "seconds": time.perf_counter() - begin, "trained": sum(p.numel() for p in params)}
