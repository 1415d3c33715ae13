"""RoboRewardBench metric for 🤗 ``evaluate``: a thin wrapper over :mod:`roboreward.evaluation.metrics` (plain numpy).

    import evaluate
    from roboreward.evaluation.hf_metric import metric_path

    metric = evaluate.load(metric_path())
    metric.compute(predictions=[5, 3, None], references=[5, 4, 1], subsets=["bridge", "bridge", "droid"])

``evaluate.load`` reads the module file of :data:`~roboreward.evaluation.hf_metric.METRIC_DIR`, which imports
:class:`RoborewardMetric` from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import datasets
import evaluate

from roboreward.evaluation import metrics

_CITATION = """\
@misc{roboreward2026,
  title         = {RoboReward: General-Purpose Vision-Language Reward Models for Robotics},
  eprint        = {2601.00675},
  archivePrefix = {arXiv},
  year          = {2026}
}
"""

_DESCRIPTION = """\
Metrics of RoboRewardBench for episodic progress rewards scored 1-5: MAE, exact and off-by-one accuracy,
Spearman correlation, the 5x5 confusion matrix (rows = reference, columns = prediction), per-subset MAE and
macro MAE (the unweighted mean over subsets, the HELM leaderboard headline), the parse-failure count (a
prediction of None counts at the maximum error, 4), and — given several models' predictions — the instance
win rate and the HELM-style subset win rate (ties count half).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: scores 1..5 of the model (None = unparseable answer, counted at error 4).
    references: reference scores 1..5.
    subsets (optional, a compute() keyword): the source subset of each instance (first part of file_name); enables
        per_subset_mae, macro_mae and the subset win rate.
    model_predictions (optional): {model name: predictions} of other models (or all models) on the same
        instances; enables the win rates. The scored model joins them under ``model_name``.
    model_name (optional): name of the scored model in the win-rate table (default "model").
Returns:
    mae, accuracy, off_by_one_accuracy, spearman, confusion_matrix, parse_failures, n;
    with subsets: per_subset_mae, macro_mae;
    with model_predictions: instance_win_rate, subset_win_rate (of this model) and win_rates (every model).
Raises:
    ValueError for scores outside 1..5, NaN / inf, mismatched lengths, or a win rate with one model.
Examples:
    >>> metric = evaluate.load(metric_path())  # from roboreward.evaluation.hf_metric
    >>> r = metric.compute(predictions=[5, 3, 1], references=[5, 4, 1])
    >>> round(r["mae"], 3), round(r["accuracy"], 3)
    (0.333, 0.667)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RoborewardMetric(evaluate.Metric):
    """RoboRewardBench metrics (see roboreward.evaluation.metrics)."""

    def _info(self) -> evaluate.MetricInfo:
        # floats, so that NaN / 2.5 reach roboreward.evaluation.metrics and get its clear errors, not an Arrow cast
        score = datasets.Value("float64")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # subsets / model_predictions are compute() keyword arguments (evaluate demands every feature)
            features=datasets.Features({"predictions": score, "references": score}),
            reference_urls=["https://arxiv.org/abs/2601.00675", "https://huggingface.co/datasets/teetone/RoboReward"],
        )

    def _compute(
        self,
        predictions: Sequence[float | None],
        references: Sequence[float],
        subsets: Sequence[str] | None = None,
        model_predictions: Mapping[str, Sequence[float | None]] | None = None,
        model_name: str = "model",
    ) -> dict[str, Any]:
        result = metrics.compute(predictions, references, subsets)
        if model_predictions is not None:
            models = {str(k): v for k, v in dict(model_predictions).items() if str(k) != model_name}
            models[model_name] = predictions
            rates = metrics.win_rates(models, references, subsets)
            result.update(rates[model_name])
            result["win_rates"] = rates
        return result
