"""The RoboRewardBench metric as a 🤗 ``evaluate`` module, shipped in the package (a thin wrapper over
:mod:`roboreward.evaluation.metrics`, which stays the source of truth and works without ``evaluate``).

    import evaluate
    from roboreward.evaluation.hf_metric import metric_path

    metric = evaluate.load(metric_path())  # from any folder, offline

:data:`METRIC_DIR` is the module's folder (``roboreward_metric/``: ``roboreward_metric.py``, its metric card
``README.md``, and ``app.py`` + ``requirements.txt``, which make the folder a Gradio Space as it is). The metric
class is :class:`~roboreward.evaluation.hf_metric.metric.RoborewardMetric`; the Space's widget is
:func:`~roboreward.evaluation.hf_metric.widget.build_widget`. ``eval_metric/roboreward_metric/`` in the repository
is a thin entry point to the same class.
"""

from __future__ import annotations

from pathlib import Path

#: The ``evaluate`` module folder shipped with the package (also a Gradio Space).
METRIC_DIR = Path(__file__).resolve().parent / "roboreward_metric"


def metric_path() -> str:
    """The installed module folder, as ``evaluate.load`` takes it."""
    return str(METRIC_DIR)


__all__ = ["METRIC_DIR", "metric_path"]
