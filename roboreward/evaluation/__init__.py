"""Evaluation stage: score a split with several reward models and compare them (RoboRewardBench).

* :mod:`~roboreward.evaluation.metrics` — the metrics as plain numpy functions (MAE, macro MAE, win rates, ...);
  :mod:`~roboreward.evaluation.correlation` — ROC-AUC / AUPRC, Pearson, Kendall, A/B preference, VOC;
* :mod:`~roboreward.evaluation.protocols` — ``roboreward`` (ours) and ``helm`` (HELM's method; its pure parts in
  :mod:`~roboreward.evaluation.helm`);
* :mod:`~roboreward.evaluation.identity` — what a results file is keyed by (model, dataset);
  :mod:`~roboreward.evaluation.curves` — prefix curves for the mean VOC;
* :mod:`~roboreward.evaluation.results` — resumable results files (also used by ``roboreward score``);
* :mod:`~roboreward.evaluation.runner` — :func:`evaluate_models` / :func:`score_split`;
* :mod:`~roboreward.evaluation.leaderboard` and :mod:`~roboreward.evaluation.plots` — the leaderboard files;
* :mod:`~roboreward.evaluation.agreement` — how often a reward agrees with binary success (RL).
"""

from __future__ import annotations

from roboreward.evaluation import metrics
from roboreward.evaluation.agreement import agreement
from roboreward.evaluation.leaderboard import leaderboard_from_files, markdown_leaderboard, write_leaderboard
from roboreward.evaluation.plots import plot_confusion, plot_leaderboard
from roboreward.evaluation.protocols import PROTOCOLS, EvalProtocol, load_protocol_scorer, make_protocol
from roboreward.evaluation.results import ResultsFile, SettingsMismatchError, read_jsonl_rows
from roboreward.evaluation.runner import (
    EvalResult,
    EvaluationError,
    ModelRun,
    evaluate_models,
    example_keys,
    model_slug,
    parse_model_arg,
    read_predictions,
    score_split,
)

__all__ = [
    "PROTOCOLS",
    "EvalProtocol",
    "EvalResult",
    "EvaluationError",
    "ModelRun",
    "ResultsFile",
    "SettingsMismatchError",
    "agreement",
    "evaluate_models",
    "example_keys",
    "leaderboard_from_files",
    "load_protocol_scorer",
    "make_protocol",
    "markdown_leaderboard",
    "metrics",
    "model_slug",
    "parse_model_arg",
    "plot_confusion",
    "plot_leaderboard",
    "read_jsonl_rows",
    "read_predictions",
    "score_split",
    "write_leaderboard",
]
