"""Supervised fine-tuning of a Qwen VLM into a RoboReward reward model with TRL's ``SFTTrainer``.

The recipe YAML is read by TRL's ``TrlParser((RewardScriptArguments, SFTConfig, RewardModelConfig))``, as in
TRL's example scripts; ``recipes/sft_reward.py`` is the thin launcher and ``roboreward train`` forwards to it.
QLoRA is built by TRL's own ``get_quantization_config`` / ``get_peft_config``. The target is the single score
digit after the released prompt's ``ANSWER: `` (see :mod:`roboreward.collator`); validation MAE is read from
the answer-token logits (no generation) and the checkpoint with the lowest MAE is kept, saved as safetensors
with its processor so :func:`roboreward.vlm.load_model` (and the scoring API) loads it.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import typer

from roboreward.collator import IGNORE_INDEX, RewardCollator, VideoSampling
from roboreward.dataset_io import DEFAULT_REPO, read_split, resolve_dataset

logger = logging.getLogger(__name__)

TINY_PREFIX = "tiny:"
SKIP_LOG = "skipped_videos.jsonl"
RUN_INFO = "run_info.json"


class RecipeError(ValueError):
    """A recipe or command line that cannot be used (the message names the file and key)."""


# --------------------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------------------
def _script_arguments_cls():
    from trl import ScriptArguments

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
        video_fps: float | None = field(default=2.0, metadata={"help": "Frames per second sampled from each video."})
        video_num_frames: int | None = field(
            default=None, metadata={"help": "Exact frame count per video (instead of video_fps)."}
        )
        video_max_frames: int = field(default=8, metadata={"help": "Most frames per video."})
        video_min_frames: int = field(default=4, metadata={"help": "Fewest frames per video (short ones repeat)."})
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

    return RewardScriptArguments


def _model_config_cls():
    from trl import ModelConfig

    @dataclass
    class RewardModelConfig(ModelConfig):
        """TRL's ModelConfig plus the modules kept out of 4-bit (TRL's get_quantization_config has no such field).

        ``model_name_or_path: tiny:qwen3_vl`` (or ``tiny:qwen2_5_vl``) builds a randomly initialised tiny model.
        """

        llm_int8_skip_modules: list[str] | None = field(
            default=None,
            metadata={"help": "Modules not quantized, e.g. model.visual lm_head (BitsAndBytesConfig field)."},
        )

    return RewardModelConfig


def make_parser():
    """The ``TrlParser`` over (RewardScriptArguments, SFTConfig, RewardModelConfig)."""
    from trl import SFTConfig, TrlParser

    return TrlParser((_script_arguments_cls(), SFTConfig, _model_config_cls()), prog="roboreward train")


def _config_path(argv: Sequence[str]) -> str | None:
    argv = list(argv)
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise RecipeError("--config needs a YAML path")
        return argv[i + 1]
    return None


def check_recipe_keys(path: str | os.PathLike, parser: Any) -> dict[str, Any]:
    """Load a recipe YAML and refuse unknown keys, naming the file and the closest known key."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe not found")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(config, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping of argument names to values")
    known = {a.dest for a in parser._actions} | {"env"}
    unknown = sorted(k for k in config if k not in known)
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), known, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise RecipeError(f"{path}: unknown recipe key(s): {', '.join(hints)}")
    return config


def parse_args(argv: Sequence[str] | None = None) -> tuple[Any, Any, Any]:
    """Parse ``--config recipe.yaml`` plus command-line overrides into (script, training, model) arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    cfg = _config_path(argv)
    if cfg is not None:
        check_recipe_keys(cfg, parser)
    script_args, training_args, model_args = parser.parse_args_and_config(argv)
    return script_args, training_args, model_args


# --------------------------------------------------------------------------------------------------------------
# Settings derived from the recipe
# --------------------------------------------------------------------------------------------------------------
def resolve_model_path(name: str) -> str:
    """``tiny:<family>`` -> a cached tiny model folder; anything else is a Hub id or local path."""
    if name and name.startswith(TINY_PREFIX):
        from roboreward.tiny import tiny_model_dir

        family = name[len(TINY_PREFIX) :]
        if family not in ("qwen3_vl", "qwen2_5_vl"):
            raise RecipeError(f"model_name_or_path {name!r}: tiny families are tiny:qwen3_vl and tiny:qwen2_5_vl")
        return str(tiny_model_dir(family))  # type: ignore[arg-type]
    if not name:
        raise RecipeError("model_name_or_path is required")
    return name


def resolve_accumulation(training_args: Any, effective_batch_size: int | None, world_size: int) -> int:
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


def configure_training_args(training_args: Any, script_args: Any, world_size: int) -> Any:
    """The settings the video collator and the MAE model selection need, whatever the recipe says."""
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    training_args.max_length = None  # the collator never truncates: a cut would drop video tokens or the answer
    if training_args.eval_strategy != "no":
        training_args.metric_for_best_model = training_args.metric_for_best_model or "mae"
        if training_args.metric_for_best_model in ("mae", "eval_mae"):
            training_args.greater_is_better = False
    resolve_accumulation(training_args, script_args.effective_batch_size, world_size)
    return training_args


def quantization_config(model_args: Any) -> Any:
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


def sampling_from(script_args: Any) -> VideoSampling:
    return VideoSampling(
        fps=None if script_args.video_num_frames is not None else script_args.video_fps,
        num_frames=script_args.video_num_frames,
        max_frames=script_args.video_max_frames,
        min_frames=script_args.video_min_frames,
    )


# --------------------------------------------------------------------------------------------------------------
# Validation metrics from the answer-token logits
# --------------------------------------------------------------------------------------------------------------
def answer_positions(labels: Any) -> Any:
    """Index of the (single) labelled token of each row; its logits sit one position earlier."""
    import torch

    mask = labels != IGNORE_INDEX
    if not bool(mask.any(dim=-1).all()):
        raise ValueError("a row without an answer token reached the metric")
    return mask.float().argmax(dim=-1).to(torch.long)


@dataclass
class ScoreLogits:
    """``preprocess_logits_for_metrics``: (B, L, V) logits -> the (B, 5) score-token logits at the answer."""

    score_ids: list[int]

    def __call__(self, logits: Any, labels: Any) -> Any:
        import torch

        if isinstance(logits, tuple):
            logits = logits[0]
        pos = answer_positions(labels) - 1
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, pos][:, self.score_ids].float()


@dataclass
class RewardMetrics:
    """``compute_metrics``: MAE (the selection metric), accuracy, off-by-one, Spearman, macro MAE over subsets
    (:func:`roboreward.metrics.compute`) and the MAE of the expected score, over the validation split."""

    score_ids: list[int]
    subsets: Sequence[str] | None = None

    def targets(self, label_ids: np.ndarray) -> np.ndarray:
        lut = {tid: s for s, tid in enumerate(self.score_ids, start=1)}
        out = []
        for row in np.asarray(label_ids):
            tok = row[row != IGNORE_INDEX]
            if len(tok) != 1 or int(tok[0]) not in lut:
                raise ValueError(f"expected one score-digit label per row, got {tok.tolist()}")
            out.append(lut[int(tok[0])])
        return np.asarray(out)

    def __call__(self, eval_pred: Any) -> dict[str, float]:
        logits = np.asarray(eval_pred.predictions, dtype=np.float64)
        refs = self.targets(eval_pred.label_ids)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        subsets = self.subsets if self.subsets is not None and len(self.subsets) == len(refs) else None
        return score_metrics(probs.argmax(-1) + 1, refs, probs @ np.arange(1, 6), subsets)


def score_metrics(
    preds: np.ndarray, refs: np.ndarray, expected: np.ndarray, subsets: Sequence[str] | None = None
) -> dict[str, float]:
    """The scalar metrics of :func:`roboreward.metrics.compute` plus ``mae_expected`` (MAE of E[score])."""
    from roboreward.metrics import compute

    full = compute(np.asarray(preds, dtype=np.int64), np.asarray(refs, dtype=np.int64), subsets)
    out = {k: float(full[k]) for k in ("mae", "accuracy", "off_by_one_accuracy", "spearman")}
    if "macro_mae" in full:
        out["macro_mae"] = float(full["macro_mae"])
    out["mae_expected"] = float(np.abs(np.asarray(expected, dtype=np.float64) - np.asarray(refs)).mean())
    return out


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------
def load_examples(root: str | os.PathLike, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a released-layout split as collator examples (validated by :func:`read_split`)."""
    rows = read_split(root, split, limit=limit)
    if not rows:
        raise RecipeError(f"{root}: split {split!r} has no examples")
    return [{"video_path": str(r.video_path), "task": r.task, "reward": r.reward, "subset": r.subset} for r in rows]


# --------------------------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------------------------
def _trainer_cls():
    import torch
    from trl import SFTTrainer

    class RewardSFTTrainer(SFTTrainer):
        """SFTTrainer for answer-digit targets: the loss and the evaluation logits come from the last two positions
        only (left-padded batches end with the answer digit), and the logs carry the count of skipped videos."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """Cross-entropy of the answer digit only. Left padding puts it last in every row, so the LM head runs
            on the last two positions (``logits_to_keep=2``) instead of building (B, L, vocab) logits."""
            labels = inputs["labels"]
            fwd = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**fwd, use_cache=False, logits_to_keep=2)
            logits = outputs.logits[:, 0].float()
            target = labels[:, -1]
            n = num_items_in_batch if num_items_in_batch is not None else target.numel()
            loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum") / torch.as_tensor(n).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            mode = "train" if model.training else "eval"
            correct = self.accelerator.gather_for_metrics((logits.argmax(-1) == target).float().mean().detach())
            self._metrics[mode]["mean_token_accuracy"].append(correct.mean().item())
            return (loss, outputs) if return_outputs else loss

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
            if prediction_loss_only:
                return loss.detach(), None, None
            return loss.detach(), outputs.logits, inputs["labels"][:, -2:]

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            collator = self.data_collator
            if isinstance(collator, RewardCollator):
                logs["skipped_videos"] = float(collator.skipped)
            super().log(logs, start_time)

    return RewardSFTTrainer


def _world_size() -> int:
    from accelerate import PartialState

    return PartialState().num_processes


def main(script_args: Any, training_args: Any, model_args: Any) -> dict[str, Any]:
    """Train, keep the best checkpoint by validation MAE, save it (safetensors + processor) and its card."""
    from transformers.trainer_utils import get_last_checkpoint
    from trl import get_peft_config

    from roboreward.model_card import build_run_info, write_model_card
    from roboreward.vlm import freeze_vision_tower, load_model, model_family, score_token_ids

    configure_training_args(training_args, script_args, _world_size())
    out = Path(training_args.output_dir)

    ################
    # Model & processor
    ################
    model_path = resolve_model_path(model_args.model_name_or_path)
    qc = quantization_config(model_args)
    model, processor = load_model(
        model_path,
        dtype=model_args.dtype or "auto",
        device_map=kbit_device_map() if qc is not None else None,
        quantization_config=qc,
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=training_args.trust_remote_code,
        revision=model_args.model_revision,
    )
    family = model_family(model.config)
    frozen = freeze_vision_tower(model) if script_args.freeze_vision_tower else 0
    peft_config = get_peft_config(model_args)
    score_ids = score_token_ids(processor.tokenizer)

    ################
    # Dataset
    ################
    from datasets import Dataset

    splits = (script_args.dataset_train_split, script_args.dataset_test_split)
    root = resolve_dataset(script_args.dataset_name, splits=splits, revision=script_args.dataset_revision)
    train_rows = load_examples(root, script_args.dataset_train_split, script_args.max_train_samples)
    eval_rows = (
        load_examples(root, script_args.dataset_test_split, script_args.max_eval_samples)
        if training_args.eval_strategy != "no"
        else []
    )
    sampling = sampling_from(script_args)
    collator = RewardCollator(processor, family, sampling, skip_log=out / SKIP_LOG, fallback=train_rows)

    ################
    # Training
    ################
    trainer = _trainer_cls()(
        model=model,
        args=training_args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=processor,
        data_collator=collator,
        peft_config=peft_config,
        compute_metrics=RewardMetrics(score_ids, [r["subset"] for r in eval_rows]) if eval_rows else None,
        preprocess_logits_for_metrics=ScoreLogits(score_ids) if eval_rows else None,
    )
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    resume = training_args.resume_from_checkpoint or last
    if resume:
        trainer.accelerator.print(f"Resuming from {resume}")
    train_result = trainer.train(resume_from_checkpoint=resume)
    history = list(trainer.state.log_history)  # before the final evaluation of the best model
    eval_metrics = trainer.evaluate() if eval_rows else {}

    # Save the best model (safetensors) with its processor; LoRA adapters are merged into the base model
    trainer.save_model(str(out / "adapter") if peft_config is not None else str(out))
    trainer.accelerator.wait_for_everyone()
    info: dict[str, Any] = {}
    if trainer.accelerator.is_main_process:
        if peft_config is not None and script_args.merge_lora:
            merge_adapter(model_path, out / "adapter", out, dtype=model_args.dtype or "auto")
        processor.save_pretrained(str(out))
        (out / "training_args.bin").unlink(missing_ok=True)  # a pickle; run_info.json records the arguments
        info = build_run_info(
            base_model=model_args.model_name_or_path,
            family=family,
            dataset=script_args.dataset_name,
            splits={script_args.dataset_train_split: len(train_rows), script_args.dataset_test_split: len(eval_rows)},
            sampling=sampling.as_dict(),
            training_args=training_args,
            model_args=model_args,
            world_size=_world_size(),
            eval_metrics=eval_metrics,
            train_metrics=dict(train_result.metrics),
            best_checkpoint=trainer.state.best_model_checkpoint,
            best_metric=trainer.state.best_metric,
            log_history=history,
            skipped_videos=_count_lines(out / SKIP_LOG),
            frozen_vision_parameters=frozen,
            quantization=qc.to_dict() if qc is not None else None,
            peft=peft_config.to_dict() if peft_config is not None else None,
        )
        (out / RUN_INFO).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        if script_args.write_model_card:
            write_model_card(out, info)
    if hasattr(trainer, "end"):
        trainer.end()
    return info


def merge_adapter(base: str, adapter_dir: Path, out: Path, *, dtype: str = "auto") -> Path:
    """Load the base model unquantized, merge the LoRA adapter, save safetensors to ``out``."""
    from peft import PeftModel

    from roboreward.vlm import load_model

    base_model, _ = load_model(base, dtype="bfloat16" if dtype == "auto" else dtype)
    merged = PeftModel.from_pretrained(base_model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    return out


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse a recipe (+ overrides) and train."""
    script_args, training_args, model_args = parse_args(argv)
    return main(script_args, training_args, model_args)


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


def train_command(
    config: Path = typer.Option(..., "--config", help="Recipe YAML (recipes/<model>/<method>/config_<variant>.yaml)."),
    overrides: list[str] | None = typer.Argument(
        None, help="Overrides as key=value (max_steps=10 output_dir=runs/x), or raw TRL flags after --."
    ),
) -> None:
    """Train a reward model from a recipe YAML, with optional key=value overrides (e.g. max_steps=10)."""
    try:
        run(["--config", str(config), *overrides_to_argv(overrides or [])])
    except RecipeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
