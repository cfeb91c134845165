"""The course's shared figures. Each function draws on a new (or given) matplotlib Axes and returns
the Figure; nothing is shown or saved here (the notebook displays it)."""

from __future__ import annotations

import matplotlib.pyplot as plt


def _axes(ax=None, figsize=(6, 3.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


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
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


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
