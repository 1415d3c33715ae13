"""Model cards for trained reward models: the run's data, metrics, hyperparameters, prompt and video sampling.

:func:`build_run_info` gathers what a training run knows (``roboreward.train`` saves it as ``run_info.json``);
:func:`render_model_card` fills ``roboreward/templates/model_card.md`` (``$placeholders``, :class:`string.Template`)
with it. ``model_cards/generate.py`` re-renders a card from a saved ``run_info.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from string import Template
from typing import Any

from roboreward.rubric import RUBRIC, SCORE_NAMES, reward_prompt

#: The card template, shipped as package data (pass ``template=`` to use your own).
DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"

#: Hyperparameters copied from the training arguments into the card.
HYPERPARAMETERS: tuple[str, ...] = (
    "learning_rate",
    "weight_decay",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "per_device_eval_batch_size",
    "optim",
    "bf16",
    "activation_checkpointing",
    "seed",
    "eval_strategy",
    "eval_steps",
    "metric_for_best_model",
)
MODEL_FIELDS: tuple[str, ...] = (
    "dtype",
    "use_peft",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "load_in_4bit",
    "bnb_4bit_quant_type",
    "use_bnb_nested_quant",
    "llm_int8_skip_modules",
)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("roboreward", "torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def build_run_info(
    *,
    base_model: str,
    family: str,
    dataset: str,
    splits: dict[str, int],
    sampling: dict[str, Any],
    training_args: Any,
    model_args: Any,
    world_size: int,
    eval_metrics: dict[str, float],
    train_metrics: dict[str, float],
    best_checkpoint: str | None,
    best_metric: float | None,
    log_history: list[dict[str, Any]],
    skipped_videos: int,
    frozen_vision_parameters: int,
    quantization: dict[str, Any] | None = None,
    peft: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a card (and a reader of the run) needs, JSON-serialisable."""
    hp = {k: getattr(training_args, k) for k in HYPERPARAMETERS if hasattr(training_args, k)}
    hp["num_processes"] = world_size
    hp["effective_batch_size"] = (
        int(training_args.per_device_train_batch_size) * int(training_args.gradient_accumulation_steps) * world_size
    )
    model = {k: getattr(model_args, k) for k in MODEL_FIELDS if hasattr(model_args, k)}
    return {
        "model_id": getattr(training_args, "hub_model_id", None) or Path(training_args.output_dir).name,
        "base_model": base_model,
        "family": family,
        "dataset": dataset,
        "splits": splits,
        "video_sampling": sampling,
        "prompt_template": reward_prompt("{instruction}").replace("{instruction}", "<instruction>"),
        "hyperparameters": {
            k: (str(v) if not isinstance(v, int | float | bool | type(None)) else v) for k, v in hp.items()
        },
        "model_settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.items()},
        "quantization": quantization,
        "peft": peft,
        "eval_metrics": eval_metrics,
        "train_metrics": train_metrics,
        "best_checkpoint": best_checkpoint,
        "best_metric": best_metric,
        "eval_history": [h for h in log_history if "eval_mae" in h],
        "skipped_videos": skipped_videos,
        "frozen_vision_parameters": frozen_vision_parameters,
        "versions": _versions(),
    }


def _table(rows: dict[str, Any], header: tuple[str, str] = ("name", "value")) -> str:
    if not rows:
        return "_none_"
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    for k, v in rows.items():
        lines.append(f"| {k} | {_fmt(v)} |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def _history_table(history: list[dict[str, Any]]) -> str:
    if not history:
        return "_no evaluation during training_"
    cols = [c for c in ("eval_mae", "eval_accuracy", "eval_off_by_one_accuracy", "eval_mae_expected", "eval_loss")]
    lines = ["| step | " + " | ".join(c.removeprefix("eval_") for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for h in history:
        lines.append(f"| {h.get('step', '')} | " + " | ".join(_fmt(h.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def _sampling_text(s: dict[str, Any]) -> str:
    if s.get("num_frames") is not None:
        return f"{s['num_frames']} frames per video, sampled uniformly (the last frame always included)"
    return (
        f"{s.get('fps')} frames per second, clamped to {s.get('min_frames')}..{s.get('max_frames')} frames per video, "
        "sampled uniformly (the last frame always included)"
    )


def render_model_card(info: dict[str, Any], template: str | os.PathLike | None = None) -> str:
    """Fill the card template with a run's info (see :func:`build_run_info`)."""
    path = Path(template) if template is not None else DEFAULT_TEMPLATE
    if not path.is_file():
        raise FileNotFoundError(f"model card template {path} not found (pass template=)")
    metrics = {k.removeprefix("eval_"): v for k, v in (info.get("eval_metrics") or {}).items()}
    hp = info.get("hyperparameters", {})
    method = "QLoRA" if (info.get("quantization") and info.get("peft")) else "LoRA" if info.get("peft") else "full"
    values = {
        "model_id": info.get("model_id", "roboreward-model"),
        "base_model": info["base_model"],
        "family": info.get("family", ""),
        "dataset": info["dataset"],
        "method": method,
        "splits": ", ".join(f"{k}: {v}" for k, v in info.get("splits", {}).items()),
        "mae": _fmt(metrics.get("mae", "n/a")),
        "metrics_table": _table(metrics, ("metric", "value")),
        "history_table": _history_table(info.get("eval_history", [])),
        "hyperparameters_table": _table(hp, ("hyperparameter", "value")),
        "model_settings_table": _table(info.get("model_settings", {}), ("setting", "value")),
        "effective_batch_size": hp.get("effective_batch_size", "n/a"),
        "sampling": _sampling_text(info.get("video_sampling", {})),
        "sampling_json": json.dumps(info.get("video_sampling", {})),
        "prompt": info.get("prompt_template", ""),
        "rubric": "\n".join(f"{s}. **{SCORE_NAMES[s]}** — {RUBRIC[s]}" for s in sorted(RUBRIC)),
        "best_checkpoint": info.get("best_checkpoint") or "the final weights (no evaluation)",
        "skipped_videos": info.get("skipped_videos", 0),
        "frozen_vision_parameters": f"{info.get('frozen_vision_parameters', 0):,}",
        "versions": ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items()),
    }
    return Template(path.read_text(encoding="utf-8")).substitute(values)


def write_model_card(
    out_dir: str | os.PathLike, info: dict[str, Any], template: str | os.PathLike | None = None
) -> Path:
    """Write ``README.md`` into a saved model folder."""
    out = Path(out_dir) / "README.md"
    out.write_text(render_model_card(info, template), encoding="utf-8")
    return out


def card_from_run(run_dir: str | os.PathLike, template: str | os.PathLike | None = None) -> Path:
    """Re-render ``README.md`` from a run folder's ``run_info.json``."""
    info_path = Path(run_dir) / "run_info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: is {run_dir} the output_dir of a roboreward training run?")
    return write_model_card(run_dir, json.loads(info_path.read_text(encoding="utf-8")), template)
