"""The report's own figure: a forest plot of the paired differences of `compare`.

One row per (pair, metric): the pooled Δ = B - A as a dot and its paired bootstrap
interval as a bar, a vertical line at 0, the corrected t-test's p beside each row.
Matplotlib's object-oriented API on the Agg canvas, as orchestrator.logdir.plots:
no pyplot and no global state, so report can run beside other plotting code.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def forest_plot(rows: list[tuple[str, float, float, float, float]], title: str) -> bytes:
    """PNG bytes of rows (label, delta, low, high, p): dots with interval bars, best read top to bottom."""
    height = 1.2 + 0.32 * len(rows)
    fig = Figure(figsize=(9, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    deltas = np.array([r[1] for r in rows], dtype=float)
    low = np.array([r[2] for r in rows], dtype=float)
    high = np.array([r[3] for r in rows], dtype=float)
    # Bars that exclude 0 are drawn dark: they are the differences the pooled records support.
    colours = ["#1f4e79" if lo > 0 or hi < 0 else "#8c8c8c" for lo, hi in zip(low, high, strict=True)]
    ax.hlines(y, low, high, colors=colours, linewidth=2)
    ax.scatter(deltas, y, color=colours, zorder=3, s=18)
    ax.axvline(0.0, color="#b22222", linewidth=1, linestyle="--")
    ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
    ax.set_xlabel("Δ = B - A (pooled test predictions, bootstrap interval)")
    ax.set_title(title, fontsize=10)
    for yi, row in zip(y, rows, strict=True):
        ax.annotate(f"p={row[4]:.3f}", xy=(1.0, yi), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()
    return buffer.getvalue()
