"""RoboRewardBench metrics as plain numpy functions (the ``evaluate`` module in ``eval_metric/`` wraps these).

Ranking and correlation metrics (success ROC-AUC / AUPRC, Pearson, Kendall, RoboArena A/B preference accuracy,
VOC) are in :mod:`roboreward.evaluation.correlation`; HELM's own aggregation in :mod:`roboreward.evaluation.helm`.

Predictions and references are scores 1..5. A prediction of ``None`` is a parse failure (a text answer with
no ``ANSWER: <n>``): it counts at the maximum error, 4, as HELM does, is never exact or off-by-one correct,
and is reported in ``parse_failures``. Anything else outside 1..5 (0, 6, 2.5, NaN, inf, strings such as ``"5"``,
bytes, booleans, complex numbers) raises a ``ValueError`` naming the position and value. References must all be
valid.

Definitions (the table in ``docs/evaluation.md``, section Metrics):

* MAE: mean |pred - ref|. Macro MAE: unweighted mean of the per-subset MAEs (HELM's headline). MSE: mean
  squared error (a parse failure at 4^2 = 16, as HELM's ``squared_error``).
* Instance win rate of model A: mean over opponents B != A of mean over instances of
  ``[|eA| < |eB|] + 0.5 [|eA| = |eB|]``.
* Subset (HELM-style) win rate: in each subset, (number of models with strictly larger MAE + 0.5 x number of
  other models with equal MAE) / (M - 1); averaged over subsets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from roboreward.rubric import MAX_ERROR, SCORES

NUM_SCORES = len(SCORES)
#: Values that convert to a number but are not one: "5", b"5", True, 5+3j (refused, as the docs say).
_NOT_SCORES = (str, bytes, bool, np.bool_, complex, np.complexfloating)


def _as_scores(values: Any, what: str, *, allow_none: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate scores; return (int array with parse failures as 0, bool mask of parse failures)."""
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise ValueError(f"{what} must be a sequence of scores 1..5, got {type(values).__name__}")
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "bUSc":  # booleans, strings, bytes, complex: not scores, even when they convert
        raise ValueError(f"{what} must hold numbers in 1..5 (dtype {arr.dtype})")
    if arr.dtype == object:
        for i, v in enumerate(arr):
            if isinstance(v, _NOT_SCORES):
                raise ValueError(f"{what}[{i}] = {v!r} is not a number in 1..5")
    if arr.dtype != object and np.issubdtype(arr.dtype, np.integer):
        ints = arr.astype(np.int64)
        failed = np.zeros(len(ints), bool)
    else:
        if arr.dtype == object:
            failed = np.equal(arr, None)  # elementwise identity test, in C
            if failed.any() and not allow_none:
                i = int(np.argmax(failed))
                raise ValueError(f"{what}[{i}] is None (missing score)")
            try:
                num = np.where(failed, np.nan, arr).astype(np.float64)
            except (TypeError, ValueError):
                bad = next(i for i, v in enumerate(arr) if not _is_number(v))
                raise ValueError(f"{what}[{bad}] = {arr[bad]!r} is not a number in 1..5") from None
        else:
            try:
                num = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{what} must hold numbers in 1..5 (dtype {arr.dtype})") from None
            failed = np.zeros(len(num), bool)
        bad_mask = ~failed & ~np.isfinite(num)
        if bad_mask.any():
            i = int(np.argmax(bad_mask))
            raise ValueError(f"{what}[{i}] = {float(num[i])!r} is NaN or infinite (use None for a parse failure)")
        whole = np.where(failed, 1.0, num)
        frac = whole != np.round(whole)
        if frac.any():
            i = int(np.argmax(frac))
            raise ValueError(f"{what}[{i}] = {float(num[i])!r} is not an integer score 1..5")
        ints = np.where(failed, 0, whole).astype(np.int64)
    out_of_range = ~failed & ((ints < SCORES[0]) | (ints > SCORES[-1]))
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        raise ValueError(f"{what}[{i}] = {int(ints[i])} is outside 1..5")
    return ints, failed


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def check_inputs(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one model's predictions against references: (preds, refs, parse-failure mask)."""
    preds, failed = _as_scores(predictions, "predictions", allow_none=True)
    refs, _ = _as_scores(references, "references", allow_none=False)
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references")
    if len(refs) == 0:
        raise ValueError("no predictions to evaluate")
    return preds, refs, failed


def abs_errors(predictions: Any, references: Any) -> np.ndarray:
    """|pred - ref| per instance (int), parse failures at :data:`MAX_ERROR`."""
    preds, refs, failed = check_inputs(predictions, references)
    return np.where(failed, MAX_ERROR, np.abs(preds - refs))


def mae(predictions: Any, references: Any) -> float:
    """Mean absolute error."""
    return float(abs_errors(predictions, references).mean())


def accuracy(predictions: Any, references: Any) -> float:
    """Fraction of exact matches (parse failures are wrong)."""
    return float((abs_errors(predictions, references) == 0).mean())


def off_by_one_accuracy(predictions: Any, references: Any) -> float:
    """Fraction within one point of the reference (parse failures are wrong)."""
    return float((abs_errors(predictions, references) <= 1).mean())


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), np.float64)
    # boundaries of runs of equal values
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); 0.0 when undefined (fewer than 2 points or a
    constant input)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"spearman needs two 1-D sequences of equal length, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("spearman: inputs contain NaN or infinity")
    if len(x) < 2:
        return 0.0
    rx, ry = _average_ranks(x) - (len(x) + 1) / 2, _average_ranks(y) - (len(y) + 1) / 2
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else 0.0


def confusion_matrix(predictions: Any, references: Any) -> np.ndarray:
    """5 x 5 counts, rows = reference score 1..5, columns = predicted score 1..5 (parse failures left out)."""
    preds, refs, failed = check_inputs(predictions, references)
    ok = ~failed
    flat = (refs[ok] - 1) * NUM_SCORES + (preds[ok] - 1)
    return np.bincount(flat, minlength=NUM_SCORES * NUM_SCORES).reshape(NUM_SCORES, NUM_SCORES)


def subset_index(subsets: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted subset names, index of each instance's subset) for ``n`` instances."""
    if isinstance(subsets, str | bytes) or not hasattr(subsets, "__len__"):
        raise ValueError(f"subsets must be a sequence of names, got {type(subsets).__name__}")
    if len(subsets) != n:
        raise ValueError(f"{len(subsets)} subsets but {n} predictions")
    arr = np.asarray(subsets)
    if arr.dtype.kind not in "US":
        arr = arr.astype(str)
    names, inverse = np.unique(arr, return_inverse=True)
    return names, inverse.reshape(-1)


def per_subset_mae(predictions: Any, references: Any, subsets: Sequence[str]) -> dict[str, float]:
    """MAE within each subset (sorted by subset name)."""
    return compute(predictions, references, subsets)["per_subset_mae"]


def macro_mae(predictions: Any, references: Any, subsets: Sequence[str]) -> float:
    """Unweighted mean of the per-subset MAEs (the RoboRewardBench leaderboard headline)."""
    return compute(predictions, references, subsets)["macro_mae"]


def _subset_maes(errors: np.ndarray, inverse: np.ndarray, k: int) -> np.ndarray:
    """(M, S) per-subset MAE from an (M, N) error matrix and each instance's subset index."""
    counts = np.bincount(inverse, minlength=k)
    sums = np.stack([np.bincount(inverse, weights=row, minlength=k) for row in errors])
    return sums / counts[None, :]


def _metrics(
    preds: np.ndarray, refs: np.ndarray, failed: np.ndarray, index: tuple[np.ndarray, np.ndarray] | None
) -> tuple[dict[str, Any], np.ndarray]:
    err = np.where(failed, MAX_ERROR, np.abs(preds - refs))
    ok = ~failed
    flat = (refs[ok] - 1) * NUM_SCORES + (preds[ok] - 1)
    out: dict[str, Any] = {
        "mae": float(err.mean()),
        "mse": float((err.astype(np.float64) ** 2).mean()),
        "accuracy": float((err == 0).mean()),
        "off_by_one_accuracy": float((err <= 1).mean()),
        # Spearman over the parsed predictions (a parse failure has no value to rank)
        "spearman": spearman(preds[ok], refs[ok]) if ok.sum() > 1 else 0.0,
        "confusion_matrix": np.bincount(flat, minlength=NUM_SCORES**2).reshape(NUM_SCORES, NUM_SCORES).tolist(),
        "parse_failures": int(failed.sum()),
        "n": len(refs),
    }
    if index is not None:
        names, inverse = index
        per = _subset_maes(err[None, :], inverse, len(names))[0]
        out["per_subset_mae"] = {str(k): float(v) for k, v in zip(names, per, strict=True)}
        out["macro_mae"] = float(per.mean())
    return out, err


def compute(predictions: Any, references: Any, subsets: Sequence[str] | None = None) -> dict[str, Any]:
    """Every single-model metric: mae, mse, accuracy, off_by_one_accuracy, spearman, confusion_matrix,
    parse_failures, n, and with ``subsets`` also per_subset_mae and macro_mae."""
    preds, refs, failed = check_inputs(predictions, references)
    index = subset_index(subsets, len(refs)) if subsets is not None else None
    return _metrics(preds, refs, failed, index)[0]


# ---------------------------------------------------------------------------------------------------------------
# Win rates across models
# ---------------------------------------------------------------------------------------------------------------


def error_matrix(model_predictions: Mapping[str, Any], references: Any) -> tuple[list[str], np.ndarray]:
    """(model names, (M, N) int8 absolute errors with parse failures at 4)."""
    if not isinstance(model_predictions, Mapping):
        raise ValueError("model_predictions must map model name -> predictions")
    names = list(model_predictions)
    refs, _ = _as_scores(references, "references", allow_none=False)
    errors = np.empty((len(names), len(refs)), np.int8)
    for m, name in enumerate(names):
        preds, failed = _as_scores(model_predictions[name], f"predictions of {name!r}", allow_none=True)
        if len(preds) != len(refs):
            raise ValueError(f"model {name!r}: {len(preds)} predictions but {len(refs)} references")
        errors[m] = np.where(failed, MAX_ERROR, np.abs(preds - refs))
    return names, errors


def _need_two(m: int) -> None:
    if m < 2:
        raise ValueError(f"win rates compare models: need at least 2 models, got {m}")


def instance_win_rates_from_errors(errors: np.ndarray) -> np.ndarray:
    """Instance win rate of every model from an (M, N) matrix of integer errors 0..4 (vectorised).

    At an instance where model A has error k, A beats the models with a larger error and ties the others at k:
    ``wins = above_k + 0.5 * (count_k - 1)``. Summing over instances is, per error level k, one matrix-vector
    product of A's indicator ``[e_A == k]`` with ``above_k + 0.5 count_k`` — no M x M pairwise loop.
    """
    errors = np.asarray(errors)
    m, n = errors.shape
    _need_two(m)
    if n == 0:
        raise ValueError("no instances to compare")
    above = np.zeros(n)  # models with an error larger than the current level
    total = np.zeros(m)
    for k in range(MAX_ERROR, -1, -1):
        mask = errors == k
        count = mask.sum(axis=0)
        if count.any():
            total += mask.astype(np.float64) @ (above + 0.5 * count)
        above += count
    return (total / n - 0.5) / (m - 1)


def subset_win_rates_from_mae(subset_mae: np.ndarray) -> np.ndarray:
    """HELM-style mean win rate of every model from an (M, S) matrix of per-subset MAEs."""
    subset_mae = np.asarray(subset_mae, np.float64)
    m = subset_mae.shape[0]
    _need_two(m)
    a, b = subset_mae[:, None, :], subset_mae[None, :, :]  # (M, M, S): row model vs column model
    wins = (a < b).sum(axis=1) + 0.5 * ((a == b).sum(axis=1) - 1)  # minus the self-tie
    return (wins / (m - 1)).mean(axis=1)


def _win_rates_from(
    names: list[str], errors: np.ndarray, index: tuple[np.ndarray, np.ndarray] | None
) -> dict[str, dict[str, float]]:
    _need_two(len(names))
    inst = instance_win_rates_from_errors(errors)
    if index is None:  # one subset: the whole set
        index = (np.array(["all"]), np.zeros(errors.shape[1], np.intp))
    subset_mae = _subset_maes(errors, index[1], len(index[0]))
    subw = subset_win_rates_from_mae(subset_mae)
    return {
        name: {"instance_win_rate": float(inst[i]), "subset_win_rate": float(subw[i])} for i, name in enumerate(names)
    }


def win_rates(
    model_predictions: Mapping[str, Any], references: Any, subsets: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """``{model: {"instance_win_rate": ..., "subset_win_rate": ...}}`` for two or more models.

    Without ``subsets`` the whole set is one subset (subset win rate then compares overall MAE).
    """
    names, errors = error_matrix(model_predictions, references)
    index = subset_index(subsets, errors.shape[1]) if subsets is not None else None
    return _win_rates_from(names, errors, index)


def leaderboard(
    model_predictions: Mapping[str, Any], references: Any, subsets: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One row per model with every metric (and win rates when there are 2+ models), best macro MAE
    (or MAE without subsets) first. Validates each input once."""
    if not isinstance(model_predictions, Mapping) or not model_predictions:
        raise ValueError("model_predictions must map model name -> predictions (at least one model)")
    refs, _ = _as_scores(references, "references", allow_none=False)
    if len(refs) == 0:
        raise ValueError("no predictions to evaluate")
    index = subset_index(subsets, len(refs)) if subsets is not None else None
    names = list(model_predictions)
    errors = np.empty((len(names), len(refs)), np.int8)
    rows = []
    for m, name in enumerate(names):
        preds, failed = _as_scores(model_predictions[name], f"predictions of {name!r}", allow_none=True)
        if len(preds) != len(refs):
            raise ValueError(f"model {name!r}: {len(preds)} predictions but {len(refs)} references")
        row, errors[m] = _metrics(preds, refs, failed, index)
        rows.append({"model": name, **row})
    if len(rows) > 1:
        wr = _win_rates_from(names, errors, index)
        for row in rows:
            row.update(wr[row["model"]])
    key = "macro_mae" if subsets is not None else "mae"
    return sorted(rows, key=lambda r: (r[key], r["mae"], r["model"]))
