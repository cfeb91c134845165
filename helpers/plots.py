"""The course's shared figures. Each function draws on a new (or given) matplotlib Axes and returns
the Figure; nothing is shown or saved here (the notebook displays it)."""

from __future__ import annotations

import matplotlib.pyplot as plt


def _axes(ax=None, figsize=(6, 3.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _finish(fig, ax):
    """The common last touches: a small legend, a light grid, a tight layout."""
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def loss_curves(histories, ax=None, title: str = "Loss during training"):
    """Train (thin) and validation (dots) loss for one ``History`` or a dict ``{label: History}``."""
    if not isinstance(histories, dict):
        histories = {"": histories}
    fig, ax = _axes(ax)
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i}"
        ax.plot(h.step, h.train_loss, color=color, alpha=0.5, lw=1, label=f"{label} train".strip())
        if h.val_loss:
            ax.plot(h.eval_step, h.val_loss, "o-", color=color, ms=4, label=f"{label} validation".strip())
    ax.set(xlabel="step", ylabel="loss (nats per token)", title=title)
    return _finish(fig, ax)


STAGES = [
    ("Pretraining", "predict the next token\non a large pile of text", "notebooks 01-05 (06-07 prompt it)"),
    ("Supervised\nfine-tuning", "imitate good answers\nto instructions", "notebook 08"),
    ("RL from\nfeedback", "prefer answers people\nrank higher", "notebooks 09-10"),
]


def training_stages(ax=None):
    """The three stages of training an assistant, left to right, with the notebooks that cover each."""
    fig, ax = _axes(ax, figsize=(10, 2.6))
    for i, (name, what, where) in enumerate(STAGES):
        x = i * 3.4
        ax.add_patch(plt.Rectangle((x, 0), 2.6, 1.6, fc=f"C{i}", alpha=0.25, ec=f"C{i}", lw=2))
        ax.text(x + 1.3, 1.15, name, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(x + 1.3, 0.55, what, ha="center", va="center", fontsize=9)
        ax.text(x + 1.3, -0.3, where, ha="center", va="center", fontsize=9, style="italic")
        if i < len(STAGES) - 1:
            ax.annotate("", xy=(x + 3.3, 0.8), xytext=(x + 2.7, 0.8), arrowprops=dict(arrowstyle="->", lw=2))
    ax.text(-0.2, 0.8, "text", ha="right", va="center", fontsize=10)
    ax.text(3 * 3.4 - 0.6, 0.8, "assistant", ha="left", va="center", fontsize=10)
    ax.set(xlim=(-1.2, 11.6), ylim=(-0.6, 1.8))
    ax.axis("off")
    fig.tight_layout()
    return fig


def bar(values: dict[str, float], ax=None, xlabel: str = "", title: str = "", log: bool = False):
    """A horizontal bar chart of ``{label: value}``, largest at the top."""
    fig, ax = _axes(ax, figsize=(6, 0.4 * len(values) + 1))
    items = sorted(values.items(), key=lambda kv: kv[1])
    ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
    if log:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, title=title)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def grouped_bars(groups: dict[str, dict[str, float]], ax=None, ylabel: str = "", title: str = ""):
    """Bars side by side: ``{series: {category: value}}``, e.g. tokens per word by tokenizer and language."""
    fig, ax = _axes(ax)
    categories = list(next(iter(groups.values())))
    width = 0.8 / len(groups)
    for i, (label, values) in enumerate(groups.items()):
        positions = [c + i * width - 0.4 + width / 2 for c in range(len(categories))]
        bars = ax.bar(positions, [values[c] for c in categories], width, label=label, color=f"C{i}")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(categories)), categories)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _visible(token: str) -> str:
    return {"\n": "\\n", " ": "␣", "\t": "\\t"}.get(token, token)


def heatmap(matrix, labels: list[str], ax=None, title: str = "", log: bool = True):
    """A (V, V) table as an image: row = current token, column = next token; ``log`` shades by log(1 + x)."""
    import numpy as np

    values = np.asarray(matrix, dtype=float)
    size = max(4.0, 0.12 * len(labels) + 1.5)
    fig, ax = _axes(ax, figsize=(size + 1, size))
    image = ax.imshow(np.log1p(values) if log else values, cmap="Blues")
    ticks = [_visible(t) for t in labels]
    ax.set_xticks(range(len(labels)), ticks, fontsize=6, family="monospace")
    ax.set_yticks(range(len(labels)), ticks, fontsize=6, family="monospace")
    ax.set(xlabel="next token", ylabel="current token", title=title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="log(1 + count)" if log else "")
    fig.tight_layout()
    return fig


def attention_map(weights, labels: list[str], ax=None, title: str = "Attention"):
    """A (T, T) matrix of attention weights: row = the token that looks, column = the token looked at."""
    fig, ax = _axes(ax, figsize=(5, 5))
    weights = weights.detach().cpu().float().numpy() if hasattr(weights, "detach") else weights
    ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0)
    shown = [_visible(label) for label in labels]  # make spaces and newlines visible
    ax.set_xticks(range(len(labels)), shown, fontsize=7, rotation=90)
    ax.set_yticks(range(len(labels)), shown, fontsize=7)
    ax.set(xlabel="looked at (key)", ylabel="looking (query)", title=title)
    fig.tight_layout()
    return fig


def curves(series: dict, ax=None, xlabel: str = "", ylabel: str = "", title: str = "", logx: bool = False,
           logy: bool = False, hlines: dict[str, float] | None = None, marker: str = "o-", integer_x: bool = False):
    """One line per ``{label: (xs, ys)}``, each series with its own xs. ``hlines`` adds dashed reference
    levels ``{label: value}``; ``integer_x`` puts a tick at every x (e.g. n-gram orders); ``logx`` is base 2."""
    fig, ax = _axes(ax)
    for i, (label, (xs, ys)) in enumerate(series.items()):
        ax.plot(list(xs), [float(y) for y in ys], marker, color=f"C{i}", ms=4, label=label)
    for i, (label, level) in enumerate((hlines or {}).items()):
        ax.axhline(level, ls="--", lw=1, color=f"C{len(series) + i}", label=label)
    if integer_x:
        ax.set_xticks(sorted({x for xs, _ in series.values() for x in xs}))
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return _finish(fig, ax)
