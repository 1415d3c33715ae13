"""Leaderboard plots: error and win-rate bars per model, one confusion matrix per model (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roboreward.rubric import SCORES


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax: Any, x: Any, width: float, series: Sequence[tuple[str, Sequence[float | None]]]) -> None:
    """Side-by-side bars (a None value draws no bar), the legend below the axes so it never covers a bar."""
    import numpy as np

    for k, (label, values) in enumerate(series):
        offset = (k - (len(series) - 1) / 2) * width
        ax.bar(x + offset, [np.nan if v is None else v for v in values], width, label=label)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=len(series), frameon=False)


def plot_leaderboard(board: Sequence[dict[str, Any]], path: Path) -> Path:
    """Bar charts: MAE and macro MAE per model; subset (and, under our protocol, instance) win rates when 2+
    models. Legends sit below the axes, clear of the bars."""
    import numpy as np

    plt = _pyplot()
    names = [r["model"] for r in board]
    x = np.arange(len(names))
    has_wr = len(board) > 1
    fig, axes = plt.subplots(1, 2 if has_wr else 1, figsize=(max(6, 1.3 * len(names)) * (2 if has_wr else 1), 5.2))
    axes = np.atleast_1d(axes)
    width = 0.38
    ax = axes[0]
    _bars(ax, x, width, [("macro MAE", [r["macro_mae"] for r in board]), ("MAE", [r["mae"] for r in board])])
    ax.set_ylabel("mean absolute error (lower is better)")
    ax.set_title("Reward error")
    if has_wr:
        ax = axes[1]
        series = [("subset win rate (HELM)", [r.get("subset_win_rate") for r in board])]
        if any(r.get("instance_win_rate") is not None for r in board):
            series.append(("instance win rate", [r.get("instance_win_rate") for r in board]))
        _bars(ax, x, width, series)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        ax.set_ylabel("win rate (higher is better)")
        ax.set_title("Win rates")
    for ax in axes:
        ax.set_xticks(x, names, rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(row: dict[str, Any], path: Path) -> Path:
    """A 5x5 confusion matrix heatmap (rows = reference, columns = prediction) with counts."""
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(row["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(5, 4.4))
    im = ax.imshow(cm, cmap="Blues")
    for r in range(cm.shape[0]):
        for c in range(cm.shape[1]):
            color = "white" if cm[r, c] > cm.max() / 2 else "black"
            ax.text(c, r, str(cm[r, c]), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(len(SCORES)), [str(s) for s in SCORES])
    ax.set_yticks(range(len(SCORES)), [str(s) for s in SCORES])
    ax.set_xlabel("predicted score")
    ax.set_ylabel("reference score")
    extra = f", {row['parse_failures']} unparsed" if row.get("parse_failures") else ""
    ax.set_title(f"{row['model']}\nMAE {row['mae']:.3f}, accuracy {row['accuracy']:.3f}{extra}", fontsize=10)
    from matplotlib.ticker import MaxNLocator

    bar = fig.colorbar(im, ax=ax, fraction=0.046)
    bar.locator = MaxNLocator(integer=True)  # counts: integer ticks only
    bar.update_ticks()
    bar.set_label("examples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
