import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from helpers import plots, train  # noqa: E402


def make_history(offset=0.0):
    h = train.History()
    h.step, h.train_loss = [0, 1, 2, 3], [3.0 + offset, 2.5, 2.2, 2.0]
    h.eval_step, h.val_loss = [0, 3], [3.1, 2.1]
    return h


def test_loss_curves_draw_train_and_validation():
    fig = plots.loss_curves({"a": make_history(), "b": make_history(0.5)})
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4 and list(lines[1].get_ydata()) == [3.1, 2.1]
    plt.close(fig)


def test_training_stages_names_every_stage():
    fig = plots.training_stages()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert all(name.split("\n")[0] in texts for name, _, _ in plots.STAGES)
    plt.close(fig)


def test_bar_sorts_values():
    fig = plots.bar({"small": 1.0, "big": 10.0}, log=True)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["small", "big"] and fig.axes[0].get_xscale() == "log"
    plt.close(fig)
