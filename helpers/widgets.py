"""Interactive widgets (ipywidgets). Each wraps a plain function that the notebook shows first, so the
widget adds play, never hidden logic. In a non-interactive run the widget is built and drawn once."""

from __future__ import annotations

import html
from collections.abc import Callable

import torch

from helpers import sampling


def sampler(model, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], *,
            prompt: str = "ROMEO:", max_new_tokens: int = 200, seed: int = 0):
    """A prompt box and sliders for temperature and top-k; shows a fresh sample on every change."""
    import ipywidgets as w

    prompt_box = w.Text(value=prompt, description="prompt")
    temperature = w.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description="temperature")
    top_k = w.IntSlider(value=0, min=0, max=100, description="top-k (0=off)")
    length = w.IntSlider(value=max_new_tokens, min=10, max=500, step=10, description="new tokens")
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})

    def draw(_=None):
        generator = torch.Generator().manual_seed(seed)
        try:
            idx = torch.tensor([encode(prompt_box.value or "\n")], dtype=torch.long)
        except ValueError as err:  # e.g. a character the tokenizer has never seen
            out.value = f"<b>Cannot encode this prompt:</b> {html.escape(str(err))}"
            return
        ids = sampling.generate(model, idx, length.value, temperature=temperature.value,
                                top_k=top_k.value or None, generator=generator)
        out.value = f"<pre style='white-space: pre-wrap'>{html.escape(decode(ids[0].tolist()))}</pre>"

    for control in (prompt_box, temperature, top_k, length):
        control.observe(draw, names="value")
    draw()
    return w.VBox([w.HBox([prompt_box, length]), w.HBox([temperature, top_k]), out])
