"""Interactive widgets (ipywidgets). Each wraps a plain function that the notebook shows first, so the
widget adds play, never hidden logic. In a non-interactive run the widget is built and drawn once."""

from __future__ import annotations

import html
from collections.abc import Callable

import torch

from helpers import sampling

# Shown once under every widget: a saved notebook keeps the widget's place but not its live model.
REOPENED_NOTE = ("<small style='color:#777'>A widget lives in the running kernel: if this reads <i>Error displaying "
                 "widget: model not found</i> (a notebook reopened after its kernel stopped), run the cell again."
                 "</small>")


def _with_note(box):
    """``box``, displayed with ``REOPENED_NOTE`` under it (the returned object is still the widget itself)."""
    from IPython.display import HTML, display

    def show():
        if hasattr(type(box), "_repr_mimebundle_"):  # ipywidgets 8
            display(box._repr_mimebundle_(), raw=True)
        else:  # ipywidgets 7 (Colab's) displays itself
            type(box)._ipython_display_(box)
        display(HTML(REOPENED_NOTE))

    box._ipython_display_ = show
    return box


def sampler(model, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], *,
            prompt: str = "ROMEO:", max_new_tokens: int = 200, seed: int = 0):
    """A prompt box and sliders for temperature, top-k and top-p; shows a fresh sample on every change.

    top-k 0 and top-p 1 mean "no cut"; the sample is ``sampling.generate`` with the same knobs and seed."""
    import ipywidgets as w

    wide = {"description_width": "initial"}  # show each slider's whole label
    prompt_box = w.Text(value=prompt, description="prompt")
    temperature = w.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description="temperature", style=wide)
    top_k = w.IntSlider(value=0, min=0, max=100, description="top-k (0 = off)", style=wide)
    top_p = w.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p (1 = off)", style=wide)
    length = w.IntSlider(value=max_new_tokens, min=10, max=500, step=10, description="new tokens", style=wide)
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})

    def draw(_=None):
        generator = torch.Generator().manual_seed(seed)
        try:
            idx = torch.tensor([encode(prompt_box.value or "\n")], dtype=torch.long)
        except ValueError as err:  # e.g. a character the tokenizer has never seen
            out.value = f"<b>Cannot encode this prompt:</b> {html.escape(str(err))}"
            return
        ids = sampling.generate(model, idx, length.value, temperature=temperature.value, top_k=top_k.value or None,
                                top_p=top_p.value if top_p.value < 1.0 else None, generator=generator)
        out.value = f"<pre style='white-space: pre-wrap'>{html.escape(decode(ids[0].tolist()))}</pre>"

    for control in (prompt_box, temperature, top_k, top_p, length):
        control.observe(draw, names="value")
    draw()
    return _with_note(w.VBox([w.HBox([prompt_box, length]), w.HBox([temperature, top_k, top_p]), out]))


PALETTE = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"]


def token_html(pieces: list[bytes], ids: list[int] | None = None) -> str:
    """Tokens as coloured boxes (HTML); hover shows the id. A token that cuts a character shows U+FFFD."""
    spans = []
    for i, piece in enumerate(pieces):
        text = piece.decode("utf-8", errors="replace") if isinstance(piece, bytes) else str(piece)
        shown = html.escape(text).replace("\n", "↵<br>").replace("\t", "→")
        title = f"id {ids[i]}" if ids is not None else f"token {i}"
        spans.append(f"<span title='{title}' style='background:{PALETTE[i % len(PALETTE)]};"
                     f"border-radius:3px;padding:1px 0;margin:0 1px'>{shown}</span>")
    return "<div style='white-space:pre-wrap;font-family:monospace;line-height:1.9'>" + "".join(spans) + "</div>"


def tokenizer_playground(tokenizers: dict, text: str = "Hello world! Tokenizers are not neutral: 12345."):
    """A text box and a choice of tokenizers (anything with ``encode_ordinary`` and ``decode_bytes``, e.g.
    ``helpers.bpe.Tokenizer`` or ``tiktoken.Encoding``); shows the coloured tokens, the ids and counts."""
    import ipywidgets as w

    box = w.Textarea(value=text, description="text", layout={"width": "95%", "height": "80px"})
    choice = w.Dropdown(options=list(tokenizers), description="tokenizer")
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})

    def draw(_=None):
        tokenizer = tokenizers[choice.value]
        ids = tokenizer.encode_ordinary(box.value)
        pieces = [tokenizer.decode_bytes([i]) for i in ids]
        n_bytes = len(box.value.encode("utf-8"))
        ratio = f"{n_bytes / len(ids):.2f} bytes per token" if ids else "no tokens"
        out.value = (f"<b>{len(ids)} tokens</b> for {len(box.value)} characters, {n_bytes} bytes ({ratio})"
                     + token_html(pieces, ids) + f"<pre style='white-space:pre-wrap'>{ids}</pre>")

    box.observe(draw, names="value")
    choice.observe(draw, names="value")
    draw()
    return _with_note(w.VBox([w.HBox([choice]), box, out]))


def merge_stepper(steps: list):
    """A slider over the steps of BPE training (``helpers.bpe.train_steps``): the text's tokens after each
    merge, and the merge that step made."""
    import ipywidgets as w

    slider = w.IntSlider(value=0, min=0, max=len(steps) - 1, description="merges")
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})

    def draw(_=None):
        step = steps[slider.value]
        if step.pair is None:
            what = "the start: one token per byte"
        else:
            left, right = (html.escape(repr(p.decode("utf-8", errors="replace"))) for p in step.pair)
            joined = html.escape(repr((step.pair[0] + step.pair[1]).decode("utf-8", errors="replace")))
            times = f"{step.count} time{'s' * (step.count != 1)}"
            what = f"merge {slider.value}: {left} + {right} → {joined} (the pair occurred {times})"
        out.value = f"<b>{what}</b><br>{len(step.pieces)} tokens" + token_html(step.pieces)

    slider.observe(draw, names="value")
    draw()
    return _with_note(w.VBox([slider, out]))


def next_word(suggest: Callable[[str, int], list[tuple[str, float]]], *, text: str = "to be or not to ",
              k: int = 5):
    """A text box that shows the ``k`` next-word suggestions ``suggest(text, k)`` with their probabilities,
    as a phone keyboard would. End the text with a space for the next word, or type part of a word to
    complete it."""
    import ipywidgets as w

    box = w.Text(value=text, description="you type", continuous_update=True, layout={"width": "420px"})
    how_many = w.IntSlider(value=k, min=1, max=15, description="suggestions")
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})

    def draw(_=None):
        try:
            found = suggest(box.value, how_many.value)
        except ValueError as err:
            out.value = f"<b>Cannot suggest:</b> {html.escape(str(err))}"
            return
        if not found:
            out.value = "<i>no suggestion: no word in the vocabulary fits</i>"
            return
        top = max(p for _, p in found)
        rows = "".join(
            f"<tr><td><code>{html.escape(str(word))}</code></td><td>{p:.3f}</td>"
            f"<td><div style='background:#4c72b0;height:10px;width:{int(200 * p / top)}px'></div></td></tr>"
            for word, p in found)
        out.value = f"<table><tr><th>word</th><th>probability</th><th></th></tr>{rows}</table>"

    for control in (box, how_many):
        control.observe(draw, names="value")
    draw()
    return _with_note(w.VBox([w.HBox([box, how_many]), out]))


def attention_viewer(model, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], *,
                     text: str = "ROMEO: What light through yonder window breaks?", max_tokens: int = 48):
    """A text box and sliders for layer and head; shows the attention map from ``model.attention_maps``."""
    import io

    import ipywidgets as w
    import matplotlib.pyplot as plt

    from helpers import plots

    n_layer, n_head = model.config.n_layer, model.config.n_head
    text_box = w.Text(value=text, description="text")
    layer = w.IntSlider(value=0, min=0, max=n_layer - 1, description="layer")
    head = w.IntSlider(value=0, min=0, max=n_head - 1, description="head")
    image = w.Image(format="png")
    message = w.HTML()

    def draw(_=None):
        try:
            ids = encode(text_box.value or "\n")[-min(max_tokens, model.config.block_size):]
        except ValueError as err:  # e.g. a character the tokenizer has never seen
            message.value = f"<b>Cannot encode this text:</b> {html.escape(str(err))}"
            return
        maps = model.attention_maps(torch.tensor([ids], dtype=torch.long))  # (n_layer, 1, nh, T, T)
        labels = [decode([i]) for i in ids]
        fig = plots.attention_map(maps[layer.value, 0, head.value], labels,
                                  title=f"layer {layer.value}, head {head.value}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        plt.close(fig)
        image.value, message.value = buffer.getvalue(), f"{len(ids)} tokens"

    for control in (text_box, layer, head):
        control.observe(draw, names="value")
    draw()
    return _with_note(w.VBox([text_box, w.HBox([layer, head]), message, image]))


def prompt_builder(score: Callable[[int, str, str], tuple[str, dict[str, float]]], label_pairs: list[str], *,
                   k: int = 4, order: str = "", max_k: int = 8):
    """Controls for a few-shot prompt (number of shots, their order of labels, the label words) and the
    probabilities the model gives each label word after it. ``score(k, order, labels)`` returns the prompt
    and {word: probability}; ``order`` is "" (random labels) or a string of "+" and "-" of length k."""
    import ipywidgets as w

    wide = {"description_width": "initial"}
    shots = w.IntSlider(value=k, min=0, max=max_k, description="shots k", style=wide)
    order_box = w.Text(value=order, description="labels in order (+/-, empty = random)", style=wide,
                       layout={"width": "360px"})
    labels = w.Dropdown(options=label_pairs, value=label_pairs[0], description="label words", style=wide)
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})

    def draw(_=None):
        pattern = order_box.value.strip()
        if pattern and (set(pattern) - {"+", "-"} or len(pattern) > max_k):
            out.value = f"<b>Order must be up to {max_k} characters of + and -, got</b> {html.escape(pattern)}"
            return
        try:
            prompt, probs = score(len(pattern) if pattern else shots.value, pattern, labels.value)
        except ValueError as err:
            out.value = f"<b>Cannot score this prompt:</b> {html.escape(str(err))}"
            return
        rows = "".join(
            f"<tr><td><code>{html.escape(word)}</code></td><td>{p:.3f}</td>"
            f"<td><div style='background:#4c72b0;height:10px;width:{int(200 * p)}px'></div></td></tr>"
            for word, p in probs.items())
        out.value = (f"<pre style='white-space: pre-wrap'>{html.escape(prompt)}</pre>"
                     f"<table><tr><th>label</th><th>probability</th><th></th></tr>{rows}</table>")

    for control in (shots, order_box, labels):
        control.observe(draw, names="value")
    draw()
    return _with_note(w.VBox([w.HBox([shots, labels]), order_box, out]))


def chat_box(respond: Callable[[list[dict]], str], *, keep_history: bool = False, first: str = ""):
    """A message box and a transcript: each message goes to ``respond(messages) -> answer`` (messages in the
    chat format of ``helpers.chat``); with ``keep_history`` the earlier turns go along too. ``first``: a message
    sent once when the widget is built (so a non-interactive run shows one exchange)."""
    import ipywidgets as w

    box = w.Text(placeholder="Type a message and press Enter", layout={"width": "480px"}, continuous_update=False)
    send, clear = w.Button(description="Send"), w.Button(description="Clear")
    history = w.Checkbox(value=keep_history, description="send earlier turns too")
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})
    messages: list[dict] = []

    def draw():
        out.value = "".join(f"<p><b>{m['role']}:</b> {html.escape(m['content'])}</p>" for m in messages) or \
            "<i>no messages yet</i>"

    def on_send(_=None):
        text = box.value.strip()
        if not text:
            return
        asked = messages + [{"role": "user", "content": text}] if history.value else [{"role": "user", "content": text}]
        try:
            answer = respond(asked) or "(an empty answer)"
        except ValueError as err:  # e.g. a conversation longer than the model's window
            answer = f"[cannot answer: {err}]"
        messages.extend([{"role": "user", "content": text}, {"role": "assistant", "content": answer}])
        box.value = ""
        draw()

    def on_clear(_=None):
        messages.clear()
        draw()

    box.observe(on_send, names="value")  # the value changes on Enter (continuous_update is off)
    send.on_click(on_send)
    clear.on_click(on_clear)
    if first:
        box.value = first  # observed: sends it
    else:
        draw()
    return _with_note(w.VBox([w.HBox([box, send, clear, history]), out]))


def rag_explorer(ask: Callable[[str, int, str, str], tuple[str, str]], question: str, attacks: list[str],
                 defences: list[str], *, k: int = 1, max_k: int = 4):
    """A question box, the number of retrieved pages ``k`` (0: closed book), an attack planted in the best page and
    a defence; ``ask(question, k, attack, defence)`` returns the prompt the model reads and its answer."""
    import ipywidgets as w

    wide = {"description_width": "initial"}
    box = w.Text(value=question, description="question", style=wide, layout={"width": "420px"},
                 continuous_update=False)
    pages = w.IntSlider(value=k, min=0, max=max_k, description="retrieved pages k", style=wide)
    attack = w.Dropdown(options=attacks, value=attacks[0], description="attack", style=wide)
    defence = w.Dropdown(options=defences, value=defences[0], description="defence", style=wide)
    out = w.HTML(layout={"border": "1px solid #ccc", "padding": "4px"})

    def draw(_=None):
        try:
            prompt, answer = ask(box.value.strip(), pages.value, attack.value, defence.value)
        except ValueError as err:
            out.value = f"<b>Cannot answer:</b> {html.escape(str(err))}"
            return
        out.value = (f"<pre style='white-space: pre-wrap'>{html.escape(prompt)}</pre>"
                     f"<p><b>answer:</b> {html.escape(answer) or '(empty)'}</p>")

    for control in (box, pages, attack, defence):
        control.observe(draw, names="value")
    draw()
    return _with_note(w.VBox([w.HBox([box, pages]), w.HBox([attack, defence]), out]))
