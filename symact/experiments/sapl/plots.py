"""The S-APL chapter's plot helpers (symmetric-apl.txt Figs. 1 to 3): they draw stored ``dynamics`` results on a
matplotlib axis, or return a figure; the chapter publishes them with :func:`symact.plotting.publish`."""
from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["plot_shapes", "plot_negative_means", "plot_losses"]


def plot_shapes(ax, run: Mapping, layer: int, title: str, cmap: str = "viridis"):
    """One layer's S-APL at every snapshot of a ``dynamics`` run (``x``, ``snapshots`` with ``shape``), coloured
    from the start (dark) to the end (yellow) of training; returns ``ax``."""
    import matplotlib.pyplot as plt

    shots = run["snapshots"]
    if not shots:
        raise ValueError("plot_shapes needs a run with snapshots (an S-APL variant)")
    colours = plt.get_cmap(cmap)
    for i, shot in enumerate(shots):
        ax.plot(run["x"], shot["shape"][layer], color=colours(i / max(1, len(shots) - 1)), lw=1)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="$x$", ylabel="$h(x)$", title=title)
    return ax


def plot_negative_means(ax, variants: Mapping):
    """``m-`` of every layer of every variant with snapshots against the fraction of training (one colour per
    variant, one line style per layer); returns ``ax``."""
    for k, (name, r) in enumerate(variants.items()):
        if not r["snapshots"]:
            continue
        fraction = np.array([s["step"] for s in r["snapshots"]]) / r["steps"]
        for layer in range(len(r["snapshots"][0]["negative_mean"])):
            ax.plot(fraction, [s["negative_mean"][layer] for s in r["snapshots"]], ["-", "--", ":"][layer % 3],
                    color=f"C{k}", label=f"{name}, layer {layer + 1}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="fraction of training", ylabel="$m_-$", title="negative-side mean output")
    ax.legend(fontsize="x-small")
    return ax


def plot_losses(variants: Mapping, ylabel: str = "training loss"):
    """The per-epoch training loss (``train_loss``) of every variant on a log scale; returns the figure."""
    import matplotlib.pyplot as plt

    if not variants:
        raise ValueError("plot_losses needs at least one variant")
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for variant, r in variants.items():
        ax.plot(np.arange(1, len(r["train_loss"]) + 1), r["train_loss"], "o-", ms=3, label=variant)
    ax.set(xlabel="epoch", ylabel=ylabel, yscale="log")
    ax.legend(fontsize="small")
    return fig
