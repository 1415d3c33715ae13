"""Training stage: what ``recipes/sft_reward.py`` (a TRL-style script) needs to fine-tune a reward model.

* :mod:`~roboreward.training.config` — recipe arguments, ``TrlParser`` parsing that refuses unknown keys with a
  "did you mean", the settings derived from a recipe (effective batch, QLoRA);
* :mod:`~roboreward.training.collator` — the video collator (answer-digit labels, left padding, skipped videos);
* :mod:`~roboreward.training.trainer` — :class:`RewardSFTTrainer`, the validation MAE metrics, data and saving
  helpers;
* :mod:`~roboreward.training.card` — the model card (huggingface_hub ``ModelCard`` with ``model-index``);
* :mod:`~roboreward.training.hub` — pushing the finished folder and our card to the Hub.

:func:`training_script` finds ``recipes/sft_reward.py`` and :func:`run` runs it (what ``roboreward train`` does).
"""

from __future__ import annotations

from roboreward.training.card import (
    DEFAULT_TEMPLATE,
    build_run_info,
    card_from_run,
    eval_results_from_leaderboard,
    read_run_info,
    render_model_card,
    usage_snippet,
    write_model_card,
)
from roboreward.training.collator import EXAMPLE_COLUMNS, IGNORE_INDEX, RewardCollator
from roboreward.training.config import (
    RecipeError,
    RewardModelConfig,
    RewardScriptArguments,
    configure_training_args,
    kbit_device_map,
    load_training_script,
    make_parser,
    overrides_to_argv,
    parse_args,
    quantization_config,
    resolve_accumulation,
    resolve_model_path,
    run,
    training_script,
    world_size,
)
from roboreward.training.hub import push_files, push_model
from roboreward.training.trainer import (
    RUN_INFO,
    SKIP_LOG,
    RewardMetrics,
    RewardSFTTrainer,
    ScoreLogits,
    answer_positions,
    checkpoint_name,
    count_lines,
    find_dataset,
    load_examples,
    merge_adapter,
    score_metrics,
    training_dataset,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "EXAMPLE_COLUMNS",
    "IGNORE_INDEX",
    "RUN_INFO",
    "SKIP_LOG",
    "RecipeError",
    "RewardCollator",
    "RewardMetrics",
    "RewardModelConfig",
    "RewardSFTTrainer",
    "RewardScriptArguments",
    "ScoreLogits",
    "answer_positions",
    "build_run_info",
    "card_from_run",
    "checkpoint_name",
    "configure_training_args",
    "count_lines",
    "eval_results_from_leaderboard",
    "find_dataset",
    "kbit_device_map",
    "load_examples",
    "load_training_script",
    "make_parser",
    "merge_adapter",
    "overrides_to_argv",
    "parse_args",
    "push_files",
    "push_model",
    "quantization_config",
    "read_run_info",
    "render_model_card",
    "resolve_accumulation",
    "resolve_model_path",
    "run",
    "score_metrics",
    "training_dataset",
    "training_script",
    "usage_snippet",
    "world_size",
    "write_model_card",
]
