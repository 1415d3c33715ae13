"""Prefix curves for the dataset-level VOC (``roboreward eval --voc-points N``): resumable like predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from roboreward.evaluation.results import ResultsFile
from roboreward.types import Example, Scorer


def voc_keys(rows: Sequence[Example], keys: Sequence[str]) -> list[str]:
    """The examples whose prefix curves give the dataset-level VOC: successful original videos (reward 5), whose
    progress should rise over time (OpenGVL scores expert episodes the same way)."""
    return [k for k, r in zip(keys, rows, strict=True) if r.reward == 5 and r.kind == "original"]


def curve_split(
    scorer: Scorer,
    rows: Sequence[Example],
    keys: Sequence[str],
    results: ResultsFile,
    points: int,
    *,
    show_progress: bool = True,
) -> int:
    """Score ``points`` growing prefixes of each :func:`voc_keys` example ``results`` has no curve for
    (:func:`roboreward.scoring.progress_curve`), appending ``times``, ``values`` (E[score], else the score) and
    OpenGVL's ``voc`` per example; returns how many were scored. Failures go to the errors file."""
    from tqdm.auto import tqdm

    from roboreward.evaluation.correlation import voc
    from roboreward.scoring import progress_curve

    wanted = set(voc_keys(rows, keys))
    done = results.open_for_append()
    todo = [(k, r) for k, r in zip(keys, rows, strict=True) if k in wanted and k not in done]
    errors: list[dict[str, Any]] = []
    scored = 0
    name = getattr(scorer, "name", "model")
    for key, r in tqdm(todo, desc=f"prefix curves {name}", unit="video", disable=not show_progress or not todo):
        try:
            curve = progress_curve(scorer, r.video_path, r.task, points)
        except Exception as exc:  # a bad video costs its own curve only
            errors.append({"key": key, "file_name": r.file_name, "error": str(exc), "kind": "curve"})
            continue
        values = [o.value for o in curve.outputs]
        row = {"key": key, "file_name": r.file_name, "subset": r.subset, "times": curve.times, "values": values}
        results.append([{**row, "voc": voc(values)}])
        scored += 1
    results.write_errors(errors, keys=sorted(wanted))
    return scored
