"""Recipe arguments and their parsing: TRL's ``TrlParser`` over (RewardScriptArguments, SFTConfig, RewardModelConfig).

A recipe YAML and ``key=value`` / ``--key value`` overrides go through TrlParser's own handling
(``parse_args_and_config(..., return_remaining_strings=True, separate_remaining_strings=True)``) with argparse's
prefix matching switched off (``allow_abbrev=False``): whatever the parser does not consume is refused, naming the
recipe file (or the command line) and the closest known key (:mod:`difflib`). ``learning_rat=1`` is an error, never
``learning_rate``. :func:`run` parses a recipe and runs ``recipes/sft_reward.py`` (what ``roboreward train`` does).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from trl import ModelConfig, ScriptArguments, SFTConfig, TrlParser

from roboreward.dataset import DEFAULT_REPO
from roboreward.sampling import DEFAULT_FPS, DEFAULT_MAX_FRAMES, DEFAULT_MIN_FRAMES, FrameSampling

logger = logging.getLogger(__name__)

#: License written into a model card when the recipe sets none (that of the Qwen-VL base models).
DEFAULT_LICENSE = "apache-2.0"


class RecipeError(ValueError):
    """A recipe or command line that cannot be used (the message names the file and key)."""


@dataclass
class RewardScriptArguments(ScriptArguments):
    """Dataset, video sampling and run options of a reward-model recipe (on top of TRL's ScriptArguments)."""

    dataset_name: str | None = field(
        default=DEFAULT_REPO,
        metadata={"help": "Dataset folder or Hub repo in the released layout (<split>/metadata.jsonl + mp4)."},
    )
    dataset_test_split: str = field(default="validation", metadata={"help": "Split used for validation MAE."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub revision of the dataset."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N train rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N eval rows."})
    video_fps: float | None = field(
        default=DEFAULT_FPS, metadata={"help": "Frames per second sampled from each video."}
    )
    video_num_frames: int | None = field(
        default=None, metadata={"help": "Exact frame count per video (instead of video_fps)."}
    )
    video_max_frames: int = field(default=DEFAULT_MAX_FRAMES, metadata={"help": "Most frames per video."})
    video_min_frames: int = field(
        default=DEFAULT_MIN_FRAMES, metadata={"help": "Fewest frames per video (short ones repeat)."}
    )
    freeze_vision_tower: bool = field(default=True, metadata={"help": "Freeze the vision encoder (paper)."})
    effective_batch_size: int | None = field(
        default=64,
        metadata={
            "help": "per_device_train_batch_size x gradient_accumulation_steps x GPUs; the accumulation is "
            "derived from it for the actual number of processes (null: keep the recipe's accumulation)."
        },
    )
    merge_lora: bool = field(
        default=True, metadata={"help": "After a LoRA/QLoRA run, merge the best adapter into the base model."}
    )
    write_model_card: bool = field(default=True, metadata={"help": "Write README.md (model card) at the end."})
    model_license: str = field(
        default=DEFAULT_LICENSE, metadata={"help": "License of the trained model, written into its card."}
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop after this many evaluations without a better metric_for_best_model (transformers' "
            "EarlyStoppingCallback; needs load_best_model_at_end). null: train for the whole schedule."
        },
    )

    def sampling(self) -> FrameSampling:
        """The frame sampling of the recipe (``video_num_frames`` wins over ``video_fps``)."""
        return FrameSampling(
            fps=self.video_fps,
            num_frames=self.video_num_frames,
            max_frames=self.video_max_frames,
            min_frames=self.video_min_frames,
        )


@dataclass
class RewardModelConfig(ModelConfig):
    """TRL's ModelConfig plus the modules kept out of 4-bit (TRL's get_quantization_config has no such field).

    ``model_name_or_path: tiny:qwen3_vl`` (or ``tiny:qwen2_5_vl``) builds a randomly initialised tiny model.
    """

    llm_int8_skip_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Modules not quantized, e.g. model.visual lm_head (BitsAndBytesConfig field)."},
    )


ARGUMENT_CLASSES = (RewardScriptArguments, SFTConfig, RewardModelConfig)


def make_parser() -> TrlParser:
    """The ``TrlParser`` over (RewardScriptArguments, SFTConfig, RewardModelConfig), without prefix matching."""
    return TrlParser(ARGUMENT_CLASSES, prog="roboreward train", allow_abbrev=False)


def known_keys(parser: TrlParser) -> set[str]:
    """Every recipe key the parser's dataclasses declare (plus TrlParser's ``env`` mapping)."""
    return {f.name for dtype in parser.dataclass_types for f in dataclasses.fields(dtype)} | {"env"}


def _unknown_message(where: str, keys: Iterable[str], known: set[str]) -> str:
    hints = []
    for key in sorted(set(keys)):
        close = difflib.get_close_matches(key, known, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"{where}: unknown recipe key(s): {', '.join(hints)}"


def _option_names(strings: Sequence[str]) -> list[str]:
    """The option names among argparse's leftover strings (``--key``, ``--key=value``; values dropped)."""
    return [s[2:].split("=", 1)[0] for s in strings if s.startswith("--") and len(s) > 2]


def _read_recipe(path: str) -> dict[str, Any]:
    """The recipe's mapping; a missing or unreadable recipe is refused with its path before TrlParser opens it."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"{p}: recipe not found")
    try:
        config = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{p}: invalid YAML ({exc})") from None
    if not isinstance(config, dict):
        raise RecipeError(f"{p}: a recipe must be a YAML mapping of argument names to values")
    return config


def parse_args(argv: Sequence[str] | None = None) -> tuple[RewardScriptArguments, SFTConfig, RewardModelConfig]:
    """Parse ``--config recipe.yaml`` plus command-line overrides into (script, training, model) arguments.

    Keys the parser does not consume — in the recipe (TrlParser's ``set_defaults_with_config`` returns them) or on
    the command line (argparse's ``parse_known_args``, no prefix matching) — raise :class:`RecipeError` with a
    "did you mean" hint, before any argument class is built.
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    known = known_keys(parser)
    rest = list(argv)
    if "--config" in rest:
        i = rest.index("--config")
        if i + 1 >= len(rest):
            raise RecipeError("--config needs a YAML path")
        config_path = rest.pop(i + 1)
        rest.pop(i)
        config = _read_recipe(config_path)
        config.pop("env", None)
        unknown = parser.set_defaults_with_config(**config)  # ["--key", "value", ...] it did not consume
        if unknown:
            raise RecipeError(_unknown_message(config_path, _option_names(unknown[::2]), known))
    _, leftover = parser.parse_known_args(rest)
    if leftover:
        names = _option_names(leftover)
        if not names:
            raise RecipeError(f"command line: unexpected argument(s) {leftover}; write key=value (e.g. max_steps=10)")
        raise RecipeError(_unknown_message("command line", names, known))
    return parser.parse_args_and_config(argv)


def overrides_to_argv(overrides: Sequence[str]) -> list[str]:
    """``key=value`` overrides (and raw ``--key value`` tokens) as TrlParser command-line arguments."""
    argv: list[str] = []
    for item in overrides:
        if item.startswith("-"):
            argv.append(item)
        elif "=" in item:
            key, value = item.split("=", 1)
            argv += [f"--{key.strip()}", value]
        elif argv and argv[-1].startswith("--"):
            argv.append(item)  # the value of a raw "--key value" pair
        else:
            raise RecipeError(f"override {item!r}: write key=value (e.g. max_steps=10)")
    return argv


# --------------------------------------------------------------------------------------------------------------
# Settings derived from the recipe
# --------------------------------------------------------------------------------------------------------------
def resolve_model_path(name: str) -> str:
    """``tiny:<family>`` or a bundled model name -> its local folder; anything else is a Hub id or local path."""
    from roboreward.scoring.spec import resolve_builtin

    if not name:
        raise RecipeError("model_name_or_path is required")
    try:
        builtin = resolve_builtin(name)
    except ValueError as exc:
        raise RecipeError(f"model_name_or_path: {exc}") from None
    return str(builtin) if builtin is not None else name


def resolve_accumulation(training_args: SFTConfig, effective_batch_size: int | None, world_size: int) -> int:
    """Set ``gradient_accumulation_steps`` so per-device batch x accumulation x processes = the effective batch."""
    if effective_batch_size is None:
        return int(training_args.gradient_accumulation_steps)
    per_step = int(training_args.per_device_train_batch_size) * int(world_size)
    if effective_batch_size % per_step:
        raise RecipeError(
            f"effective_batch_size {effective_batch_size} is not a multiple of per_device_train_batch_size "
            f"{training_args.per_device_train_batch_size} x {world_size} process(es)"
        )
    accumulation = effective_batch_size // per_step
    if accumulation != training_args.gradient_accumulation_steps:
        logger.info(
            "gradient_accumulation_steps %d -> %d for effective batch %d on %d process(es)",
            training_args.gradient_accumulation_steps,
            accumulation,
            effective_batch_size,
            world_size,
        )
    training_args.gradient_accumulation_steps = accumulation
    return accumulation


def configure_training_args(training_args: SFTConfig, script_args: RewardScriptArguments, world_size: int) -> bool:
    """Apply the settings the video collator and the MAE model selection need, whatever the recipe says.

    Returns whether the recipe asked for ``push_to_hub``: Trainer's own push is switched off (it would upload
    before our model card exists); the run pushes the finished folder itself (:func:`roboreward.training.push_model`).
    """
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    training_args.max_length = None  # the collator never truncates: a cut would drop video tokens or the answer
    if training_args.eval_strategy != "no":
        training_args.metric_for_best_model = training_args.metric_for_best_model or "mae"
        if training_args.metric_for_best_model in ("mae", "eval_mae"):
            training_args.greater_is_better = False
    resolve_accumulation(training_args, script_args.effective_batch_size, world_size)
    push = bool(training_args.push_to_hub)
    training_args.push_to_hub = False
    return push


def quantization_config(model_args: RewardModelConfig) -> Any:
    """TRL's ``get_quantization_config``, plus ``llm_int8_skip_modules`` (keeps the vision tower out of 4-bit)."""
    from trl import get_quantization_config

    qc = get_quantization_config(model_args)
    if qc is not None and model_args.llm_int8_skip_modules:
        qc.llm_int8_skip_modules = list(model_args.llm_int8_skip_modules)
    return qc


def kbit_device_map() -> dict[str, Any] | None:
    """Put a k-bit model on this process's device (what TRL's former ``get_kbit_device_map`` returned)."""
    try:
        from trl import get_kbit_device_map  # removed from recent TRL releases

        return get_kbit_device_map()
    except ImportError:
        import torch
        from accelerate import PartialState

        return {"": PartialState().local_process_index} if torch.cuda.is_available() else {"": "cpu"}


def world_size() -> int:
    """Number of processes of this (accelerate) launch."""
    from accelerate import PartialState

    return PartialState().num_processes


# --------------------------------------------------------------------------------------------------------------
# The training script
# --------------------------------------------------------------------------------------------------------------
SCRIPT_NAME = "sft_reward.py"


def training_script(config: str | os.PathLike | None = None) -> Path:
    """``recipes/sft_reward.py``: beside a recipe (``recipes/<model>/<method>/config.yaml``) or in this checkout."""
    candidates = []
    if config is not None:
        candidates += [folder / SCRIPT_NAME for folder in Path(config).resolve().parents]
    candidates.append(Path(__file__).resolve().parents[2] / "recipes" / SCRIPT_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise RecipeError(
        f"{SCRIPT_NAME} not found beside the recipe or in a roboreward source checkout: pass --script PATH "
        "(recipes/sft_reward.py of the roboreward repository)"
    )


def load_training_script(path: str | os.PathLike | None = None) -> ModuleType:
    """Import the training script as a module (its ``main(script_args, training_args, model_args)``)."""
    path = Path(path) if path is not None else training_script()
    spec = importlib.util.spec_from_file_location("roboreward_sft_reward", path)
    if spec is None or spec.loader is None:
        raise RecipeError(f"{path}: cannot import the training script")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(argv: Sequence[str], script: str | os.PathLike | None = None) -> dict[str, Any]:
    """Parse ``--config recipe.yaml`` (+ overrides) and run the training script's ``main``."""
    argv = list(argv)
    config = argv[argv.index("--config") + 1] if "--config" in argv[:-1] else None
    args = parse_args(argv)
    return load_training_script(script or training_script(config)).main(*args)
