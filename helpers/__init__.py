"""Shared helpers for the course notebooks.

Import the modules you need by name, e.g. ``from helpers import data, train, plots``.
Nothing here runs at import time: no downloads, no device detection, no seeding.

Layering (a module imports only modules to its left; plots, checks and widgets import no model module):
    scale, device, checks, plots, lm, cells, tokenizer, compute, world, minhash -> data, ngram, bpe, miniweb
    -> ngram_lm, rnn, gpt, tasks, distributed -> artifacts -> checkpointing -> train, sampling, cleaning
    -> stages, widgets

One concept per module: ngram (counting and smoothing) and ngram_lm (the same model as tensors) for 01;
cells (LSTM and GRU gates) and rnn for 02; bpe (training) and tokenizer (encoding) for 03; gpt for 04;
for 05: world (the mini-web's hidden truth), miniweb (its pages and junk), tasks (questions with exact
graders), cleaning (the data pipeline) with minhash (near duplicates), compute (6ND, MFU), checkpointing
(resume files) and distributed (DDP).
``lm`` is the language-model contract every model shares (the loss with ignore index -1, input checks,
eval mode); the rest of the machinery is data, train, sampling, artifacts, checks, plots and widgets.
"""
