"""The leaderboard of a results folder: metrics per model, as md / CSV / JSON + plots, naming the protocol and
every setting.

Under the ``roboreward`` protocol models are compared on the examples every model has a prediction for;
under ``helm`` each model on the instances it answered, with HELM's aggregation
(:mod:`roboreward.evaluation.helm`) over HELM's subset names.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roboreward.evaluation import correlation, helm, metrics
from roboreward.evaluation.protocols import EvalProtocol
from roboreward.evaluation.results import read_jsonl_rows
from roboreward.types import Example, RewardOutput


def _value(pred: dict[str, Any]) -> float | None:
    """A stored prediction's one scalar reward (E[score], else the score; the HELM answer under helm)."""
    if pred.get("protocol") == "helm":
        return pred.get("answer")
    if pred.get("score") is None:
        return None
    return RewardOutput(score=pred["score"], expected=pred.get("expected")).value


def _peer_metrics(rows: Sequence[Example], values: Sequence[float | None]) -> dict[str, Any]:
    """The ranking metrics on the rows with a value: success ROC-AUC / AUPRC, Pearson / Kendall (overall,
    per subset and their mean over subsets), RoboArena A/B preference accuracy."""
    ok = [i for i, v in enumerate(values) if v is not None]
    if not ok:
        return {"success_roc_auc": None, "success_auprc": None, "pearson": None, "kendall_tau": None}
    v = [float(values[i]) for i in ok]  # type: ignore[arg-type]
    refs = [rows[i].reward for i in ok]
    subs = [rows[i].subset for i in ok]
    per = correlation.per_subset_correlations(v, refs, subs)
    pref = correlation.preference_accuracy([rows[i].data for i in ok], v)
    return {
        **correlation.success_auc(v, refs),
        **correlation.correlations(v, refs),
        "per_subset_pearson": {s: c["pearson"] for s, c in per.items()},
        "per_subset_kendall_tau": {s: c["kendall_tau"] for s, c in per.items()},
        "pearson_subset_mean": correlation.mean_defined([c["pearson"] for c in per.values()]),
        "kendall_tau_subset_mean": correlation.mean_defined([c["kendall_tau"] for c in per.values()]),
        "preference_accuracy": pref["preference_accuracy"],
        "preference_pairs": pref["pairs"],
    }


def _roboreward_board(
    rows: Sequence[Example], keys: Sequence[str], preds: dict[str, dict[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    from roboreward.evaluation.runner import EvaluationError

    common = [i for i, k in enumerate(keys) if all(k in p for p in preds.values())]
    if not common:
        raise EvaluationError("no example has a prediction from every model (see the *.errors.jsonl files)")
    sub_rows = [rows[i] for i in common]
    table = {name: [preds[name][keys[i]]["score"] for i in common] for name in preds}
    board = metrics.leaderboard(table, [r.reward for r in sub_rows], [r.subset for r in sub_rows])
    for row in board:
        row.update(_peer_metrics(sub_rows, [_value(preds[row["model"]][keys[i]]) for i in common]))
        row["missing"] = len(keys) - len(common)
    return board


def _helm_board(
    rows: Sequence[Example], keys: Sequence[str], preds: dict[str, dict[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """HELM's numbers: per model its answered instances, per-subset means, the mean over the subsets present."""
    from roboreward.evaluation.runner import EvaluationError

    board, table = [], {}
    for name, p in preds.items():
        present = [i for i, k in enumerate(keys) if k in p]
        if not present:
            raise EvaluationError(f"{name}: no predictions (see its *.errors.jsonl file)")
        answers = [p[keys[i]].get("answer") for i in present]
        refs = [rows[i].reward for i in present]
        subsets = [helm.helm_subset_name(rows[i].subset) for i in present]
        per = helm.per_subset_stats(answers, refs, subsets, [True] * len(present))
        per = {s: per[s] for s in sorted(per)}
        table[name] = {s: st["abs_error"] for s, st in per.items()}
        ints = [None if a is None or a not in metrics.SCORES else int(a) for a in answers]
        errors = [helm.instance_stats(a, r)["abs_error"] for a, r in zip(answers, refs, strict=True)]
        row: dict[str, Any] = {
            "model": name,
            "mae": sum(errors) / len(errors),
            "mse": sum(e**2 for e in errors) / len(errors),  # a parse failure: 4^2, HELM's squared_error
            "accuracy": sum(st["exact_match"] * st["count"] for st in per.values()) / len(present),
            "off_by_one_accuracy": sum(e <= 1 for e in errors) / len(errors),
            "per_subset_mae": table[name],
            "per_subset_mse": {s: st["squared_error"] for s, st in per.items()},
            "per_subset_n": {s: st["count"] for s, st in per.items()},
            "macro_mse": helm.aggregate_row_means({name: {s: st["squared_error"] for s, st in per.items()}})[name],
            "parse_failures": sum(a is None for a in answers),
            "out_of_scale_answers": sum(a is not None and i is None for a, i in zip(answers, ints, strict=True)),
            "confusion_matrix": _confusion(ints, refs),
            "n": len(present),
            "missing": len(keys) - len(present),
            **_peer_metrics([rows[i] for i in present], answers),
        }
        ok = [(a, r) for a, r in zip(answers, refs, strict=True) if a is not None]
        row["spearman"] = metrics.spearman([a for a, _ in ok], [r for _, r in ok]) if len(ok) > 1 else 0.0
        board.append(row)
    ranked = _helm_columns(table)
    means = helm.aggregate_row_means(ranked)
    wins = helm.aggregate_row_win_rates(ranked) if len(board) > 1 else {}
    for row in board:
        row["macro_mae"] = means[row["model"]]
        row["macro_subsets"] = sorted({s for r in ranked.values() for s in r})
        if wins:
            row["subset_win_rate"] = wins[row["model"]]
    return sorted(board, key=lambda r: (r["macro_mae"] is None, r["macro_mae"] or 0.0, r["mae"], r["model"]))


def _helm_columns(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The columns HELM's leaderboard averages: its 23 subsets when the data has any of them (other subsets are
    reported but, as on HELM's leaderboard, not in the mean), else every subset."""
    present = {s for row in table.values() for s in row}
    keep = present & set(helm.HELM_SUBSETS) or present
    return {m: {s: v for s, v in row.items() if s in keep} for m, row in table.items()}


def _confusion(preds: Sequence[int | None], refs: Sequence[int]) -> list[list[int]]:
    cm = [[0] * len(metrics.SCORES) for _ in metrics.SCORES]
    for p, r in zip(preds, refs, strict=True):
        if p is not None:
            cm[r - 1][p - 1] += 1
    return cm


def leaderboard_from_files(
    rows: Sequence[Example],
    keys: Sequence[str],
    models: Sequence[tuple[str, Path, dict[str, Any]]],
    protocol: EvalProtocol | None = None,
) -> list[dict[str, Any]]:
    """Metrics per model under ``protocol`` (default ``roboreward``), with win rates when 2+ models, each row
    carrying the model's spec, frame settings and the protocol."""
    protocol = protocol or EvalProtocol()
    preds = {name: read_jsonl_rows(path) for name, path, _ in models}
    board = _helm_board(rows, keys, preds) if protocol.is_helm else _roboreward_board(rows, keys, preds)
    settings = {name: s for name, _, s in models}
    wanted = set(keys)
    for name, path, _ in models:
        curves_path = path.with_name(path.name.removesuffix(".jsonl") + ".curves.jsonl")
        if curves_path.is_file():
            vocs = [c["voc"] for k, c in read_jsonl_rows(curves_path).items() if k in wanted]
            row = next(r for r in board if r["model"] == name)
            row["mean_voc"], row["voc_n"] = (sum(vocs) / len(vocs) if vocs else None), len(vocs)
    for row in board:
        s = settings[row["model"]]
        row["protocol"] = protocol.name
        row.update({k: s.get(k) for k in ("fps", "max_frames", "num_frames")})
        row["spec"] = s.get("spec") or s.get("model") or row["model"]
        row["settings"] = s
    return board


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("macro_mae", "macro MAE"),
    ("mae", "MAE"),
    ("mse", "MSE"),
    ("accuracy", "accuracy"),
    ("off_by_one_accuracy", "off-by-one acc."),
    ("spearman", "Spearman"),
    ("pearson", "Pearson"),
    ("kendall_tau", "Kendall tau"),
    ("success_roc_auc", "success ROC-AUC"),
    ("success_auprc", "success AUPRC"),
    ("preference_accuracy", "A/B pref. acc."),
    ("mean_voc", "mean VOC"),
    ("subset_win_rate", "subset win rate"),
    ("instance_win_rate", "instance win rate"),
    ("parse_failures", "parse failures"),
    ("n", "n"),
    ("missing", "missing"),
    ("protocol", "protocol"),
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


def markdown_leaderboard(
    board: Sequence[dict[str, Any]], *, split: str, dataset: str, protocol: EvalProtocol | None = None
) -> str:
    """The leaderboard (macro MAE first), a per-subset MAE table and the protocol's settings, as markdown."""
    protocol = protocol or EvalProtocol()
    how = (
        "each model on the instances it answered (HELM); macro MAE is the mean over the subset columns present"
        if protocol.is_helm
        else "models compared on the examples every model has a prediction for"
    )
    lines = [
        f"# Leaderboard: {dataset} / {split} (protocol: {protocol.name})",
        "",
        "Ranked by macro MAE (unweighted mean of per-subset MAE, the RoboRewardBench headline); lower is better. "
        f"Unparseable answers count at the maximum error, 4; {how}.",
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
    lines += ["", f"## Settings (protocol {protocol.name})", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in protocol.settings().items()]
    for row in board:
        s = {k: v for k, v in row.get("settings", {}).items() if k not in protocol.settings()}
        lines.append(f"| {row['model']} | {json.dumps(s, default=str)} |")
    return "\n".join(lines) + "\n"


def write_leaderboard(
    out: Path,
    board: Sequence[dict[str, Any]],
    rows: Sequence[Example],
    *,
    split: str,
    dataset: str,
    protocol: EvalProtocol | None = None,
) -> list[Path]:
    """leaderboard.md / .csv / .json (each naming the protocol and its settings), leaderboard.png and one
    confusion_<model>.png per model."""
    from roboreward.atomic import atomic_open, atomic_write_text
    from roboreward.evaluation.plots import plot_confusion, plot_leaderboard
    from roboreward.evaluation.runner import model_slug

    protocol = protocol or EvalProtocol()
    settings = protocol.settings()
    out.mkdir(parents=True, exist_ok=True)
    md = out / "leaderboard.md"
    atomic_write_text(md, markdown_leaderboard(board, split=split, dataset=dataset, protocol=protocol))
    csv_path = out / "leaderboard.csv"
    subsets = sorted({s for row in board for s in row.get("per_subset_mae", {})})
    with atomic_open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["rank", *(k for k, _ in _COLUMNS), *(f"mae_{s}" for s in subsets), *(f"setting_{k}" for k in settings)]
        )
        for rank, row in enumerate(board, 1):
            w.writerow(
                [
                    rank,
                    *(row.get(k) for k, _ in _COLUMNS),
                    *(row.get("per_subset_mae", {}).get(s) for s in subsets),
                    *settings.values(),
                ]
            )
    js = out / "leaderboard.json"
    doc = {"dataset": dataset, "split": split, "protocol": settings, "models": list(board)}
    atomic_write_text(js, json.dumps(doc, indent=2, default=str))
    files = [md, csv_path, js, plot_leaderboard(board, out / "leaderboard.png")]
    for row in board:
        files.append(plot_confusion(row, out / f"confusion_{model_slug(row['model'])}.png"))
    return files
