"""RoboRewardBench metric module for 🤗 ``evaluate`` (``evaluate.load`` on this folder): the class lives in
:mod:`roboreward.evaluation.hf_metric.metric`, a thin wrapper over :mod:`roboreward.evaluation.metrics`.

One import per line: ``evaluate`` checks a metric module's imports line by line.
"""

import evaluate  # noqa: F401  (``evaluate`` checks that the module's libraries are installed)

from roboreward.evaluation.hf_metric.metric import RoborewardMetric

__all__ = ["RoborewardMetric"]
