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


def test_grouped_bars_put_each_category_under_every_series():
    fig = plots.grouped_bars({"a": {"en": 1.0, "ru": 3.0}, "b": {"en": 1.5, "ru": 2.0}})
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == [1.0, 1.5, 2.0, 3.0]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["en", "ru"]
    plt.close(fig)


def test_heatmap_labels_every_token():
    fig = plots.heatmap([[0, 3], [1, 0]], ["a", "\n"], title="bigrams")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["a", "\\n"] and fig.axes[0].get_title() == "bigrams"
    plt.close(fig)


def test_curves_draw_every_series_and_reference():
    fig = plots.curves({"a": ([1, 2, 3], [3.0, 2.0, 1.5]), "b": ([1, 2], [3.0, 2.5])}, logy=True,
                       hlines={"uniform": 4.17}, integer_x=True)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3 and ax.get_yscale() == "log"
    assert list(ax.get_lines()[0].get_ydata()) == [3.0, 2.0, 1.5]
    plt.close(fig)


def test_attention_map_labels_rows_and_columns():
    import torch

    fig = plots.attention_map(torch.eye(3), ["a", " ", "\n"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "\\n"]
    assert ax.images[0].get_array().shape == (3, 3)
    plt.close(fig)


def test_curves_draw_one_line_per_series():
    fig = plots.curves({"a": ([256, 512, 1024], [1.0, 0.1, 0.01]), "b": ([256, 512], [2.0, 3.0])}, logx=True)
    lines = fig.axes[0].get_lines()
    assert [len(line.get_xdata()) for line in lines] == [3, 2] and fig.axes[0].get_xscale() == "log"
    plt.close(fig)
