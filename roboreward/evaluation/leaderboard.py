"""The leaderboard of a results folder: metrics per model on the common examples, as md / CSV / JSON + plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roboreward.evaluation import metrics
from roboreward.evaluation.results import read_jsonl_rows
from roboreward.types import Example


def leaderboard_from_files(
    rows: Sequence[Example], keys: Sequence[str], models: Sequence[tuple[str, Path, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Metrics per model on the examples every model has a prediction for (win rates with 2+ models)."""
    from roboreward.evaluation.runner import EvaluationError

    preds = {name: read_jsonl_rows(path) for name, path, _ in models}
    common = [i for i, k in enumerate(keys) if all(k in p for p in preds.values())]
    if not common:
        raise EvaluationError("no example has a prediction from every model (see the *.errors.jsonl files)")
    refs = [rows[i].reward for i in common]
    subsets = [rows[i].subset for i in common]
    table = {name: [preds[name][keys[i]]["score"] for i in common] for name in preds}
    board = metrics.leaderboard(table, refs, subsets)
    settings = {name: s for name, _, s in models}
    for row in board:
        s = settings[row["model"]]
        row["missing"] = len(keys) - len(common)
        row.update({k: s.get(k) for k in ("fps", "max_frames", "num_frames")})
        row["spec"] = s.get("spec") or s.get("model") or row["model"]
    return board


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("macro_mae", "macro MAE"),
    ("mae", "MAE"),
    ("accuracy", "accuracy"),
    ("off_by_one_accuracy", "off-by-one acc."),
    ("spearman", "Spearman"),
    ("subset_win_rate", "subset win rate"),
    ("instance_win_rate", "instance win rate"),
    ("parse_failures", "parse failures"),
    ("n", "n"),
    ("missing", "missing"),
    ("fps", "fps"),
    ("max_frames", "max frames"),
    ("num_frames", "num frames"),
)


def fmt(v: Any) -> str:
    """A table cell: ``-`` for None, 3 decimals for floats."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def markdown_leaderboard(board: Sequence[dict[str, Any]], *, split: str, dataset: str) -> str:
    """The leaderboard (macro MAE first) and a per-subset MAE table, as markdown."""
    lines = [
        f"# Leaderboard: {dataset} / {split}",
        "",
        "Ranked by macro MAE (unweighted mean of per-subset MAE, the RoboRewardBench headline); lower is better. "
        "Unparseable answers count at the maximum error, 4.",
        "",
        "| rank | " + " | ".join(title for _, title in _COLUMNS) + " |",
        "|---|" + "---|" * len(_COLUMNS),
    ]
    for rank, row in enumerate(board, 1):
        lines.append(f"| {rank} | " + " | ".join(fmt(row.get(k)) for k, _ in _COLUMNS) + " |")
    subsets = sorted({s for row in board for s in row.get("per_subset_mae", {})})
    if subsets:
        lines += ["", "## MAE per subset", "", "| subset | " + " | ".join(r["model"] for r in board) + " |"]
        lines.append("|---|" + "---|" * len(board))
        for s in subsets:
            lines.append(f"| {s} | " + " | ".join(fmt(r["per_subset_mae"].get(s)) for r in board) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(
    out: Path, board: Sequence[dict[str, Any]], rows: Sequence[Example], *, split: str, dataset: str
) -> list[Path]:
    """leaderboard.md / .csv / .json, leaderboard.png and one confusion_<model>.png per model."""
    from roboreward.evaluation.plots import plot_confusion, plot_leaderboard
    from roboreward.evaluation.runner import model_slug

    out.mkdir(parents=True, exist_ok=True)
    md = out / "leaderboard.md"
    md.write_text(markdown_leaderboard(board, split=split, dataset=dataset), encoding="utf-8")
    csv_path = out / "leaderboard.csv"
    subsets = sorted({s for row in board for s in row.get("per_subset_mae", {})})
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", *(k for k, _ in _COLUMNS), *(f"mae_{s}" for s in subsets)])
        for rank, row in enumerate(board, 1):
            w.writerow(
                [rank, *(row.get(k) for k, _ in _COLUMNS), *(row.get("per_subset_mae", {}).get(s) for s in subsets)]
            )
    js = out / "leaderboard.json"
    js.write_text(json.dumps({"dataset": dataset, "split": split, "models": list(board)}, indent=2, default=str))
    files = [md, csv_path, js, plot_leaderboard(board, out / "leaderboard.png")]
    for row in board:
        files.append(plot_confusion(row, out / f"confusion_{model_slug(row['model'])}.png"))
    return files
