"""Model cards for trained reward models, through huggingface_hub's ``ModelCard`` / ``ModelCardData`` / ``EvalResult``.

:func:`build_run_info` gathers what a training run knows (saved as ``run_info.json``); :func:`render_model_card`
fills the Jinja template ``roboreward/templates/model_card.md`` with it through ``ModelCard.from_template``, so the
YAML header (``license``, ``base_model``, ``datasets``, ``pipeline_tag``, ``library_name``, ``model-index``) is
written by huggingface_hub. ``model-index`` carries the validation metrics of the run and, given a
``roboreward eval`` leaderboard (:func:`eval_results_from_leaderboard`), its results too. The card's usage snippet
runs as written: the model id, plain Python values, no absolute paths. ``model_cards/generate.py`` re-renders a
card from a saved ``run_info.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from roboreward.rubric import RUBRIC, SCORE_NAMES, reward_prompt

#: The card template (Jinja, as ``ModelCard.from_template`` reads it), shipped as package data.
DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "model_card.md"
#: What the card says the model does (the Hub pipeline tag) and which library loads it.
PIPELINE_TAG = "video-text-to-text"
LIBRARY_NAME = "transformers"
TAGS: tuple[str, ...] = ("roboreward", "reward-model", "robotics", "trl", "sft")
#: Metrics of a run or leaderboard row written into ``model-index`` (key -> display name).
CARD_METRICS: dict[str, str] = {
    "macro_mae": "Macro MAE (mean over subsets)",
    "mae": "MAE",
    "accuracy": "Accuracy",
    "off_by_one_accuracy": "Off-by-one accuracy",
    "spearman": "Spearman",
    "mae_expected": "MAE of E[score]",
}
TASK_NAME = "Episodic progress reward (1-5)"

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
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def plain(value: Any) -> Any:
    """A JSON/YAML/Python-literal friendly value: enums by value (``linear``, not ``SchedulerType.LINEAR``)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, int | float | bool | str | type(None)):
        return value
    return str(value)


def public_name(name: str | os.PathLike | None) -> str | None:
    """A dataset / model name fit for a public card: a Hub id or ``tiny:`` spec as is, a local folder by its name."""
    if name is None:
        return None
    text = str(name)
    if Path(text).expanduser().exists() or os.path.isabs(text):
        return Path(text).name
    return text


def is_repo_id(name: str | None) -> bool:
    """Whether ``name`` looks like a Hub repo id (``owner/name``) rather than a local folder or a ``tiny:`` spec."""
    return bool(name) and bool(_REPO_ID.match(str(name))) and not Path(str(name)).exists()


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
    license: str | None = None,
    eval_split: str = "validation",
) -> dict[str, Any]:
    """Everything a card (and a reader of the run) needs, JSON-serialisable; local paths reduced to folder names."""
    hp = {k: plain(getattr(training_args, k)) for k in HYPERPARAMETERS if hasattr(training_args, k)}
    hp["num_processes"] = world_size
    hp["effective_batch_size"] = (
        int(training_args.per_device_train_batch_size) * int(training_args.gradient_accumulation_steps) * world_size
    )
    model = {k: plain(getattr(model_args, k)) for k in MODEL_FIELDS if hasattr(model_args, k)}
    return {
        "model_id": getattr(training_args, "hub_model_id", None) or Path(training_args.output_dir).name,
        "base_model": public_name(base_model),
        "family": family,
        "dataset": public_name(dataset),
        "license": license,
        "splits": splits,
        "eval_split": eval_split,
        "video_sampling": sampling,
        "prompt_template": reward_prompt("{instruction}").replace("{instruction}", "<instruction>"),
        "hyperparameters": hp,
        "model_settings": model,
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


# --------------------------------------------------------------------------------------------------------------
# model-index
# --------------------------------------------------------------------------------------------------------------
def eval_results(metrics: Mapping[str, Any], *, dataset: str, split: str) -> list[EvalResult]:
    """``EvalResult`` entries (one per known metric present) for ``model-index``."""
    out = []
    for key, name in CARD_METRICS.items():
        value = metrics.get(key, metrics.get(f"eval_{key}"))
        if value is None:
            continue
        out.append(
            EvalResult(
                task_type=PIPELINE_TAG,
                task_name=TASK_NAME,
                dataset_type=dataset,
                dataset_name=dataset,
                dataset_split=split,
                metric_type=key,
                metric_name=name,
                metric_value=round(float(value), 4),
            )
        )
    return out


def eval_results_from_leaderboard(path: str | os.PathLike, model: str | None = None) -> list[EvalResult]:
    """``model-index`` entries from a ``roboreward eval`` output: its ``leaderboard.json`` (or the folder holding it).

    ``model`` picks the leaderboard row (by name or spec); it may be left out when the leaderboard has one row.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "leaderboard.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no leaderboard.json (the output folder of `roboreward eval`)")
    try:
        board = json.loads(p.read_text(encoding="utf-8"))
        rows = board["models"]
        dataset, split = str(board["dataset"]), str(board["split"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{p}: not a roboreward leaderboard.json ({exc})") from None
    names = [str(r.get("model")) for r in rows]
    if model is None:
        if len(rows) != 1:
            raise ValueError(f"{p}: {len(rows)} models {names}; choose one (--eval-model)")
        row = rows[0]
    else:
        matches = [r for r in rows if model in (str(r.get("model")), str(r.get("spec")))]
        if not matches:
            raise ValueError(f"{p}: no model {model!r} in the leaderboard; it has {names}")
        row = matches[0]
    return eval_results(row, dataset=public_name(dataset) or dataset, split=split)


# --------------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(plain(v)).replace("|", "\\|")


def _table(rows: Mapping[str, Any], header: tuple[str, str] = ("name", "value")) -> str:
    if not rows:
        return "_none_"
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in rows.items()]
    return "\n".join(lines)


def _history_table(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return "_no evaluation during training_"
    cols = ("eval_mae", "eval_accuracy", "eval_off_by_one_accuracy", "eval_mae_expected", "eval_loss")
    lines = ["| step | " + " | ".join(c.removeprefix("eval_") for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for h in history:
        lines.append(f"| {h.get('step', '')} | " + " | ".join(_fmt(h.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def _sampling_text(s: Mapping[str, Any]) -> str:
    if s.get("num_frames") is not None:
        return f"{s['num_frames']} frames per video, sampled uniformly (the last frame always included)"
    return (
        f"{s.get('fps')} frames per second, clamped to {s.get('min_frames')}..{s.get('max_frames')} frames per video, "
        "sampled uniformly (the last frame always included)"
    )


def sampling_arguments(s: Mapping[str, Any]) -> str:
    """The sampling as Python keyword arguments (``fps=2.0, max_frames=8, min_frames=4``; unset ones left out)."""
    return ", ".join(f"{k}={plain(v)!r}" for k, v in s.items() if v is not None)


def usage_snippet(model_id: str, sampling: Mapping[str, Any]) -> str:
    """Python that scores a video with the model, runnable as written (``episode.mp4`` is the user's video)."""
    args = sampling_arguments(sampling)
    return (
        "from roboreward.scoring import RewardModel\n\n"
        f"rm = RewardModel({json.dumps(model_id)}{', ' + args if args else ''})\n"
        'out = rm.score("episode.mp4", "open the top drawer")\n'
        "print(out.score, out.probs, out.expected)"
    )


def card_data(info: Mapping[str, Any], extra_results: Sequence[EvalResult] = (), *, hub: bool = False) -> ModelCardData:
    """The card's YAML header: license, base model, datasets, pipeline tag, library, tags and ``model-index``.

    ``extra_results`` (from ``roboreward eval``) replace the run's own validation entries for the same dataset,
    split and metric. ``hub``: a card for the Hub, whose metadata check accepts only repo ids as ``base_model``
    (a ``tiny:`` spec or a local folder is then named in the text only).
    """
    dataset = info.get("dataset")
    own = eval_results(
        info.get("eval_metrics") or {}, dataset=str(dataset), split=str(info.get("eval_split", "validation"))
    )
    extra = list(extra_results)
    covered = {(r.dataset_type, r.dataset_split, r.metric_type) for r in extra}
    results = [r for r in own if (r.dataset_type, r.dataset_split, r.metric_type) not in covered] + extra
    return ModelCardData(
        license=info.get("license") or None,
        base_model=info.get("base_model") if not hub or is_repo_id(info.get("base_model")) else None,
        datasets=[dataset] if is_repo_id(dataset) else None,
        pipeline_tag=PIPELINE_TAG,
        library_name=LIBRARY_NAME,
        tags=list(TAGS),
        model_name=str(info.get("model_id", "roboreward-model")).split("/")[-1],
        eval_results=results or None,
    )


def render_model_card(
    info: Mapping[str, Any],
    template: str | os.PathLike | None = None,
    eval_results: Sequence[EvalResult] = (),
    *,
    hub: bool = False,
) -> ModelCard:
    """The card of a run (see :func:`build_run_info`), with extra ``model-index`` entries from ``eval_results``
    (``hub``: metadata the Hub accepts, see :func:`card_data`)."""
    path = Path(template) if template is not None else DEFAULT_TEMPLATE
    if not path.is_file():
        raise FileNotFoundError(f"model card template {path} not found (pass template=)")
    metrics = {k.removeprefix("eval_"): v for k, v in (info.get("eval_metrics") or {}).items()}
    hp = info.get("hyperparameters", {})
    method = "QLoRA" if (info.get("quantization") and info.get("peft")) else "LoRA" if info.get("peft") else "full"
    sampling = info.get("video_sampling", {})
    model_id = str(info.get("model_id", "roboreward-model"))
    values = {
        "model_id": model_id,
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
        "sampling": _sampling_text(sampling),
        "sampling_arguments": sampling_arguments(sampling),
        "usage": usage_snippet(model_id, sampling),
        "prompt": info.get("prompt_template", ""),
        "rubric": "\n".join(f"{s}. **{SCORE_NAMES[s]}** — {RUBRIC[s]}" for s in sorted(RUBRIC)),
        "best_checkpoint": info.get("best_checkpoint") or "the final weights (no evaluation)",
        "skipped_videos": info.get("skipped_videos", 0),
        "frozen_vision_parameters": f"{info.get('frozen_vision_parameters', 0):,}",
        "vision_tower": "vision tower frozen" if info.get("frozen_vision_parameters") else "vision tower trained",
        "versions": ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items()),
    }
    data = card_data(info, eval_results, hub=hub)
    return ModelCard.from_template(data, template_str=path.read_text(encoding="utf-8"), **values)


def write_model_card(
    out_dir: str | os.PathLike,
    info: Mapping[str, Any],
    template: str | os.PathLike | None = None,
    eval_results: Sequence[EvalResult] = (),
) -> Path:
    """Write ``README.md`` into a saved model folder."""
    out = Path(out_dir) / "README.md"
    out.write_text(str(render_model_card(info, template, eval_results)), encoding="utf-8")
    return out


def read_run_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A run folder's ``run_info.json``."""
    info_path = Path(run_dir) / "run_info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: is {run_dir} the output_dir of a roboreward training run?")
    return json.loads(info_path.read_text(encoding="utf-8"))


def card_from_run(
    run_dir: str | os.PathLike,
    template: str | os.PathLike | None = None,
    eval_results: Sequence[EvalResult] = (),
) -> Path:
    """Re-render ``README.md`` from a run folder's ``run_info.json`` (plus ``roboreward eval`` results)."""
    return write_model_card(run_dir, read_run_info(run_dir), template, eval_results)
