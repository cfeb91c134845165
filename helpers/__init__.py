"""Shared helpers for the course notebooks.

Import the modules you need by name, e.g. ``from helpers import data, train, plots``.
Nothing here runs at import time: no downloads, no device detection, no seeding.

Layering (a module only imports modules to its left):
    scale, device, checks, plots -> data -> gpt -> artifacts -> train, sampling -> stages, widgets
"""
