"""The metric's Gradio widget (what ``evaluate.utils.launch_gradio_widget`` builds, for current Gradio).

``launch_gradio_widget`` still uses ``gr.inputs`` / ``gr.outputs``, removed in Gradio 4, so the Space's ``app.py``
builds this equivalent: a table of (prediction, reference, subset) rows in, the metric's result as JSON out, the
metric card below.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

COLUMNS: tuple[str, ...] = ("prediction", "reference", "subset")
EXAMPLE: list[list[Any]] = [[5, 5, "bridge"], [3, 4, "bridge"], [None, 1, "droid"], [1, 1, "droid"]]
_YAML_HEADER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.S)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def table_inputs(rows: Any) -> dict[str, Any]:
    """``compute()`` keyword arguments from the widget's rows (a DataFrame or a list of lists).

    A blank prediction is a parse failure (``None``); rows without a reference are ignored; the subsets are passed
    only when every row names one.
    """
    values = rows.values.tolist() if hasattr(rows, "values") else [list(r) for r in rows]
    preds, refs, subsets = [], [], []
    for i, row in enumerate(values, 1):
        row = list(row) + [None] * (len(COLUMNS) - len(row))
        pred, ref, subset = row[: len(COLUMNS)]
        if _blank(ref):
            continue
        try:
            preds.append(None if _blank(pred) else float(pred))
            refs.append(float(ref))
        except (TypeError, ValueError):
            raise ValueError(f"row {i}: prediction and reference must be numbers 1..5, got {pred!r}, {ref!r}") from None
        subsets.append(None if _blank(subset) else str(subset).strip())
    if not refs:
        raise ValueError("no rows with a reference score")
    out: dict[str, Any] = {"predictions": preds, "references": refs}
    if all(s is not None for s in subsets):
        out["subsets"] = subsets
    return out


def build_widget(metric: Any, readme: str | os.PathLike | None = None) -> Any:
    """A ``gr.Interface`` computing ``metric`` (an ``evaluate`` module) on a table; ``.launch()`` serves it."""
    import gradio as gr

    def compute(rows: Any) -> dict[str, Any]:
        try:
            return metric.compute(**table_inputs(rows))
        except ValueError as exc:
            raise gr.Error(str(exc)) from None

    article = ""
    if readme is not None and Path(readme).is_file():
        article = _YAML_HEADER.sub("", Path(readme).read_text(encoding="utf-8"), count=1)
    return gr.Interface(
        fn=compute,
        inputs=gr.Dataframe(
            value=EXAMPLE, headers=list(COLUMNS), datatype=["number", "number", "str"], interactive=True
        ),
        outputs=gr.JSON(label=metric.name),
        title=f"Metric: {metric.name}",
        description=metric.info.description + "\nA blank prediction counts as a parse failure (error 4).",
        article=article,
        flagging_mode="never",
    )


def serve(folder: str | os.PathLike, **launch_kwargs: Any) -> None:
    """Load the ``evaluate`` module in ``folder`` and serve its widget (a Space's ``app.py`` calls this)."""
    import evaluate

    folder = Path(folder)
    build_widget(evaluate.load(str(folder)), readme=folder / "README.md").launch(**launch_kwargs)
