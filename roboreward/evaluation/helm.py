"""HELM's RoboRewardBench method, re-implemented from reading stanford-crfm/helm (branch ``rob``).

The pure parts (answer parsing, per-instance error, the leaderboard aggregation, the subset names, the
robo_arena sample and the 1-fps JPEG frame choice) live here; how the model is asked (message order,
generation, frames) is in :mod:`roboreward.evaluation.protocols`. Where each function comes from:

* :func:`parse_answer` — ``RoboRewardBenchProgressPredictionMetric.extract_answer``
  (``metrics/robo_reward_bench_metrics.py``): the FIRST case-insensitive ``\\banswer\\b\\s*:\\s*<number>``, else
  a number at the very start of the output; the raw float is kept (``ANSWER: 3.5`` is 3.5, ``ANSWER: 10`` is 10).
* :func:`instance_stats` — its ``evaluate_generation``: ``abs_error`` / ``squared_error`` / ``exact_match``,
  an unparseable answer at 4 / 16 / 0, and no stats at all for a request without a completion (the instance is
  dropped for that model only).
* :func:`aggregate_row_means` / :func:`aggregate_row_win_rates` — ``presentation/summarize.py``'s
  ``compute_aggregate_row_means`` / ``compute_aggregate_row_win_rates`` over the per-subset columns: the mean
  of the columns a model has, and per column the share of other models it beats (ties half).
* :data:`HELM_SUBSETS` / :func:`helm_subset_name` — the run groups of ``schema_video.yaml``'s RoboRewardBench
  leaderboard (long OXE names where the release's file names use short ones).
* :func:`downsample_indices` — ``runner.downsample_eval_instances`` (``np.random.seed(0)``, ``choice`` without
  replacement): the 1,000-instance robo_arena run of ``run_entries_video_understanding.conf``.
* :func:`frame_indices_1fps` — ``images_utils.sample_frames`` (the ``sample_video_frames`` run expander for
  models without video input): every ``int(native_fps // fps)``-th frame from the first.

``tests/fixtures/helm_parity.json`` holds values computed with HELM's own code; ``tests/test_evaluation.py``
checks these functions against it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

#: HELM's unparseable-answer error (``abs_error``) and its square.
HELM_PARSE_FAILURE_ERROR = 4.0
HELM_PARSE_FAILURE_SQUARED = 16.0
#: ``max_tokens`` of HELM's ``robo_reward_bench`` run spec (``vlm_run_specs.py``).
HELM_MAX_NEW_TOKENS = 5000
#: robo_arena instances in HELM's separate robo_arena run (``--max-eval-instances 1000``), sampled with seed 0.
HELM_ROBO_ARENA_INSTANCES = 1000
HELM_SAMPLE_SEED = 0
#: Frames per second of HELM's ``sample_video_frames`` expander (JPEG frames for models without video input).
HELM_FRAMES_PER_SECOND = 1

_ANSWER_RE = re.compile(r"(?i)\banswer\b\s*:\s*(-?\d+(?:\.\d+)?)")
_LEADING_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\b")

#: Release subset name (first part of ``file_name``) -> HELM's run-group name, for the names that differ.
_LONG_NAMES: dict[str, str] = {
    "austin_buds": "austin_buds_dataset_converted_externally_to_rlds",
    "austin_sirius": "austin_sirius_dataset_converted_externally_to_rlds",
    "berkeley_mvp": "berkeley_mvp_converted_externally_to_rlds",
    "berkeley_rpt": "berkeley_rpt_converted_externally_to_rlds",
    "dlr_edan_shared_control": "dlr_edan_shared_control_converted_externally_to_rlds",
    "dlr_sara_grid_clamp": "dlr_sara_grid_clamp_converted_externally_to_rlds",
    "iamlab_cmu_pickup_insert": "iamlab_cmu_pickup_insert_converted_externally_to_rlds",
    "kaist_nonprehensile": "kaist_nonprehensile_converted_externally_to_rlds",
    "nyu_rot": "nyu_rot_dataset_converted_externally_to_rlds",
    "stanford_hydra": "stanford_hydra_dataset_converted_externally_to_rlds",
    "tokyo_u_lsmo": "tokyo_u_lsmo_converted_externally_to_rlds",
    "ucsd_kitchen": "ucsd_kitchen_dataset_converted_externally_to_rlds",
    "ucsd_pick_and_place": "ucsd_pick_and_place_dataset_converted_externally_to_rlds",
    "utokyo_pr2_opening_fridge": "utokyo_pr2_opening_fridge_converted_externally_to_rlds",
    "utokyo_pr2_tabletop": "utokyo_pr2_tabletop_manipulation_converted_externally_to_rlds",
    "utokyo_xarm_bimanual": "utokyo_xarm_bimanual_converted_externally_to_rlds",
    "utokyo_xarm_pick_and_place": "utokyo_xarm_pick_and_place_converted_externally_to_rlds",
}

#: The 23 subsets of HELM's RoboRewardBench leaderboard (``core_scenarios`` in ``schema_video.yaml``).
HELM_SUBSETS: tuple[str, ...] = (
    "robo_arena",
    "austin_sirius_dataset_converted_externally_to_rlds",
    "berkeley_autolab_ur5",
    "berkeley_fanuc_manipulation",
    "berkeley_mvp_converted_externally_to_rlds",
    "berkeley_rpt_converted_externally_to_rlds",
    "bridge",
    "cmu_play_fusion",
    "dlr_edan_shared_control_converted_externally_to_rlds",
    "droid",
    "fractal20220817_data",
    "iamlab_cmu_pickup_insert_converted_externally_to_rlds",
    "jaco_play",
    "kaist_nonprehensile_converted_externally_to_rlds",
    "roboturk",
    "stanford_hydra_dataset_converted_externally_to_rlds",
    "taco_play",
    "tokyo_u_lsmo_converted_externally_to_rlds",
    "ucsd_kitchen_dataset_converted_externally_to_rlds",
    "ucsd_pick_and_place_dataset_converted_externally_to_rlds",
    "utokyo_pr2_tabletop_manipulation_converted_externally_to_rlds",
    "utokyo_xarm_bimanual_converted_externally_to_rlds",
    "viola",
)


def helm_subset_name(subset: str) -> str:
    """HELM's run-group name for a release subset (``stanford_hydra`` -> ``stanford_hydra_dataset_converted_
    externally_to_rlds``); names HELM spells the same way, and names it does not know, are returned as they are."""
    return _LONG_NAMES.get(subset, subset)


def parse_answer(text: str | None) -> float | None:
    """HELM's answer: the first ``answer: <number>`` (any case), else a leading number, as a float; None if
    neither (an empty or missing text included)."""
    if not text:
        return None
    text = str(text).strip()
    m = _ANSWER_RE.search(text) or _LEADING_RE.search(text)
    return float(m.group(1)) if m else None


def instance_stats(answer: float | None, reference: float) -> dict[str, float]:
    """HELM's per-instance stats for a parsed answer (None = unparseable): abs_error, squared_error,
    exact_match."""
    if answer is None:
        return {"abs_error": HELM_PARSE_FAILURE_ERROR, "squared_error": HELM_PARSE_FAILURE_SQUARED, "exact_match": 0.0}
    return {
        "abs_error": abs(answer - reference),
        "squared_error": (answer - reference) ** 2,
        "exact_match": 1.0 if answer == reference else 0.0,
    }


def per_subset_stats(
    answers: Sequence[float | None], references: Sequence[float], subsets: Sequence[str], present: Sequence[bool]
) -> dict[str, dict[str, float]]:
    """``{subset: {abs_error, squared_error, exact_match, count}}`` (means over the instances of each subset the
    model answered; ``present[i]`` False drops instance ``i``, as HELM drops a request with no completion)."""
    if not (len(answers) == len(references) == len(subsets) == len(present)):
        raise ValueError("answers, references, subsets and present must have one length")
    sums: dict[str, dict[str, float]] = {}
    for a, r, s, ok in zip(answers, references, subsets, present, strict=True):
        if not ok:
            continue
        acc = sums.setdefault(s, {"abs_error": 0.0, "squared_error": 0.0, "exact_match": 0.0, "count": 0})
        for k, v in instance_stats(a, r).items():
            acc[k] += v
        acc["count"] += 1
    return {
        s: {**{k: v / acc["count"] for k, v in acc.items() if k != "count"}, "count": int(acc["count"])}
        for s, acc in sums.items()
    }


def aggregate_row_means(table: Mapping[str, Mapping[str, float | None]]) -> dict[str, float | None]:
    """Per model, the mean of its non-missing column values (None when it has none), summed in column order."""
    out: dict[str, float | None] = {}
    for model, row in table.items():
        values = [float(v) for v in row.values() if v is not None]
        out[model] = sum(values) / len(values) if values else None
    return out


def aggregate_row_win_rates(
    table: Mapping[str, Mapping[str, float | None]], *, lower_is_better: bool = True
) -> dict[str, float | None]:
    """HELM's mean win rate: per column, a model's value beats the worse values and ties count half, over the
    other models with a value there (columns with fewer than 2 values skipped); averaged over its columns."""
    models = list(table)
    columns = sorted({c for row in table.values() for c in row})
    per_model: dict[str, list[float]] = {m: [] for m in models}
    for c in columns:
        values = {m: table[m].get(c) for m in models if table[m].get(c) is not None}
        if len(values) < 2:
            continue
        counts: dict[float, int] = {}
        for v in values.values():
            counts[v] = counts.get(v, 0) + 1  # type: ignore[index]
        wins: dict[float, float] = {}
        below = 0
        for v, n in sorted(counts.items(), reverse=lower_is_better):  # worst first
            wins[v] = below + (n - 1) / 2
            below += n
        for m, v in values.items():
            per_model[m].append(wins[v] / (below - 1))  # type: ignore[index]
    return {m: (sum(w) / len(w) if w else None) for m, w in per_model.items()}


def downsample_indices(total: int, max_instances: int, seed: int = HELM_SAMPLE_SEED) -> list[int]:
    """The instances (indices in scenario order) HELM keeps with ``--max-eval-instances``: all when there are
    not more, else ``np.random.seed(seed); np.random.choice(instances, max_instances, replace=False)``, in that
    draw's order."""
    if max_instances < 1:
        raise ValueError(f"max_instances must be >= 1, got {max_instances}")
    if total <= max_instances:
        return list(range(total))
    return [int(i) for i in np.random.RandomState(seed).choice(total, max_instances, replace=False)]


def frame_indices_1fps(total: int, native_fps: float, fps: int = HELM_FRAMES_PER_SECOND) -> list[int]:
    """The frames HELM's ``sample_frames`` writes as JPEGs: every ``max(int(native_fps // fps), 1)``-th decoded
    frame, starting with the first (a 0 native fps counts as ``fps``)."""
    native = native_fps or float(fps)
    interval = max(int(native // fps), 1)
    return list(range(0, total, interval))
