"""Shared helpers for the course notebooks.

Import the modules you need by name, e.g. ``from helpers import data, train, plots``.
Nothing here runs at import time: no downloads, no device detection, no seeding.

Layering (a module imports only modules to its left; plots, checks and widgets import no model module):
    scale, device, checks, plots -> data -> ngram, bpe -> rnn, gpt -> artifacts -> train, sampling
    -> stages, widgets

One module per course stage: ngram (01), rnn (02), bpe (03), gpt (04); the shared machinery is data,
train, sampling, artifacts, checks, plots and widgets.
"""
