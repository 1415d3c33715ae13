"""Ranking and correlation metrics peers report next to MAE.

* :func:`success_auc` — ROC-AUC and average precision (AUPRC) of a continuous reward (E[score], else the score)
  against binary success (reference 5 vs < 5).
* :func:`correlations` / :func:`per_subset_correlations` — Pearson and Kendall's tau-b of reward vs reference.
* :func:`preference_accuracy` — RoboArena A/B: within a session, does the reward order the policies as the human
  partial-success scores do.
* :func:`voc` / :func:`mean_voc` — value-order correlation of a prefix curve (Spearman of values vs time) and its
  dataset mean, with 0 for a curve shorter than 2 or near-constant (``np.allclose``), as OpenGVL does.

Undefined values (one class only, a constant input, no pairs) are ``None`` in the results, never NaN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

SUCCESS_SCORE = 5


def _floats(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        i = int(np.argmax(~np.isfinite(arr)))
        raise ValueError(f"{what}[{i}] = {arr[i]!r} is NaN or infinite")
    return arr


def _pair(values: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    v, r = _floats(values, "values"), _floats(references, "references")
    if len(v) != len(r):
        raise ValueError(f"{len(v)} values but {len(r)} references")
    return v, r


def roc_auc(scores: Any, labels: Any) -> float | None:
    """Area under the ROC curve (ties count half: the Mann-Whitney U statistic); None with one class only."""
    from scipy.stats import rankdata

    s, y = _pair(scores, labels)
    pos = y > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: Any, labels: Any) -> float | None:
    """Area under the precision-recall curve as average precision, sum over thresholds of
    (recall step) x precision, tied scores forming one threshold; None without positives."""
    s, y = _pair(scores, labels)
    pos = y > 0
    if not pos.any():
        return None
    order = np.argsort(-s, kind="mergesort")
    s, pos = s[order], pos[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the end of each run of tied scores
    tp = np.cumsum(pos)[last_of_run]
    precision = tp / (last_of_run + 1)
    recall_step = np.diff(np.r_[0, tp]) / pos.sum()
    return float((recall_step * precision).sum())


def success_auc(values: Any, references: Any) -> dict[str, float | None]:
    """``{"success_roc_auc", "success_auprc"}`` of ``values`` against success (reference == 5)."""
    v, r = _pair(values, references)
    success = (r == SUCCESS_SCORE).astype(np.float64)
    return {"success_roc_auc": roc_auc(v, success), "success_auprc": average_precision(v, success)}


def correlations(values: Any, references: Any) -> dict[str, float | None]:
    """``{"pearson", "kendall_tau"}`` (tau-b, ties corrected); None when undefined (n < 2 or a constant input)."""
    from scipy.stats import kendalltau, pearsonr

    v, r = _pair(values, references)
    if len(v) < 2 or np.ptp(v) == 0 or np.ptp(r) == 0:
        return {"pearson": None, "kendall_tau": None}
    return {"pearson": float(pearsonr(v, r).statistic), "kendall_tau": float(kendalltau(v, r).statistic)}


def per_subset_correlations(values: Any, references: Any, subsets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`correlations` within each subset (sorted by name)."""
    v, r = _pair(values, references)
    if len(subsets) != len(v):
        raise ValueError(f"{len(subsets)} subsets but {len(v)} values")
    s = np.asarray(subsets, dtype=str)
    return {str(name): correlations(v[s == name], r[s == name]) for name in sorted(set(s.tolist()))}


def mean_defined(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None (None when none is)."""
    ok = [float(v) for v in values if v is not None]
    return float(np.mean(ok)) if ok else None


# ----------------------------------------------------------------------------------------- RoboArena A/B pairs

_SIDE_RE = re.compile(r"^(?P<session>.+)_(?P<side>[A-Z])$")


def session_of(row: Mapping[str, Any]) -> str | None:
    """The RoboArena evaluation session of a dataset row: its ``session`` column, else an ``episode_id`` of the
    form ``<session>_<side>`` (what ``roboreward build`` writes), else the folder under ``robo_arena/``."""
    if row.get("session"):
        return str(row["session"])
    m = _SIDE_RE.match(str(row.get("episode_id") or ""))
    if m:
        return m.group("session")
    parts = str(row.get("file_name") or "").split("/")
    return parts[1] if len(parts) > 2 else None


def human_progress(row: Mapping[str, Any]) -> float:
    """The human's score of a RoboArena policy: ``partial_success`` (0-1) or ``progress`` (0-100) when the row
    carries one, else its 1-5 ``reward`` (the binned partial success)."""
    for key, scale in (("partial_success", 100.0), ("progress", 1.0)):
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            return float(value) * scale
    return float(row["reward"])


def preference_accuracy(
    rows: Sequence[Mapping[str, Any]], values: Sequence[float], *, subset: str = "robo_arena"
) -> dict[str, Any]:
    """A/B preference accuracy on the RoboArena rows of ``rows`` (dataset rows with ``file_name``, ``task``,
    ``reward``, ...; ``values[i]`` the model's reward for ``rows[i]``).

    Policies of one session judged on the same instruction form the pairs (counterfactual rows of other
    instructions pair only with rows of that instruction). A pair the human ranks as a tie is left out
    (``human_ties``); a pair the model ties counts half. ``accuracy`` is None without any usable pair.
    """
    if len(rows) != len(values):
        raise ValueError(f"{len(rows)} rows but {len(values)} values")
    groups: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        if str(row.get("file_name", "")).split("/")[0] != subset:
            continue
        session = session_of(row)
        if session is not None and row.get("kind", "original") in ("original", "counterfactual", "paraphrase"):
            groups.setdefault((session, str(row["task"])), []).append(i)
    credit, pairs, human_ties = 0.0, 0, 0
    for members in groups.values():
        for i, j in combinations(members, 2):
            if rows[i].get("file_name") == rows[j].get("file_name"):
                continue
            h = np.sign(human_progress(rows[i]) - human_progress(rows[j]))
            if h == 0:
                human_ties += 1
                continue
            m = np.sign(float(values[i]) - float(values[j]))
            credit += 0.5 if m == 0 else float(m == h)
            pairs += 1
    return {"preference_accuracy": credit / pairs if pairs else None, "pairs": pairs, "human_ties": human_ties}


# ----------------------------------------------------------------------------------------------- prefix curves


def voc(values: Sequence[float]) -> float:
    """Value-order correlation of a curve (values in time order): Spearman of values vs position; 0 when it has
    fewer than 2 points or is near-constant (``np.allclose(v, v[0])``), as OpenGVL maps its undefined VOC."""
    from scipy.stats import spearmanr

    v = _floats(values, "curve")
    if len(v) < 2 or np.allclose(v, v[0]):
        return 0.0
    return float(spearmanr(v, np.arange(len(v))).statistic)


def mean_voc(curves: Sequence[Sequence[float]]) -> float | None:
    """Mean :func:`voc` over curves (None for no curves)."""
    return float(np.mean([voc(c) for c in curves])) if curves else None
