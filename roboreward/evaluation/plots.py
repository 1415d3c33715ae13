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


def plot_leaderboard(board: Sequence[dict[str, Any]], path: Path) -> Path:
    """Bar charts: MAE and macro MAE per model; instance and subset win rates (when 2+ models)."""
    import numpy as np

    plt = _pyplot()
    names = [r["model"] for r in board]
    x = np.arange(len(names))
    has_wr = len(board) > 1
    fig, axes = plt.subplots(1, 2 if has_wr else 1, figsize=(max(6, 1.3 * len(names)) * (2 if has_wr else 1), 4.5))
    axes = np.atleast_1d(axes)
    width = 0.38
    ax = axes[0]
    ax.bar(x - width / 2, [r["macro_mae"] for r in board], width, label="macro MAE")
    ax.bar(x + width / 2, [r["mae"] for r in board], width, label="MAE")
    ax.set_ylabel("mean absolute error (lower is better)")
    ax.set_title("Reward error")
    ax.legend()
    if has_wr:
        ax = axes[1]
        ax.bar(x - width / 2, [r["subset_win_rate"] for r in board], width, label="subset win rate (HELM)")
        ax.bar(x + width / 2, [r["instance_win_rate"] for r in board], width, label="instance win rate")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        ax.set_ylabel("win rate (higher is better)")
        ax.set_title("Win rates")
        ax.legend()
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
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
