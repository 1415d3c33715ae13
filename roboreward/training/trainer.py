"""The pieces a reward-model training script needs beyond TRL: the trainer subclass, the validation metrics and the
dataset / saving helpers. ``recipes/sft_reward.py`` is the script that puts them together.

The target is the single score digit after the released prompt's ``ANSWER: `` (see
:mod:`roboreward.training.collator`); validation MAE is read from the answer-token logits (no generation) and the
checkpoint with the lowest MAE is kept, saved as safetensors with its processor so
:func:`roboreward.scoring.vlm.load_model` (and the scoring API) loads it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from trl import SFTTrainer

from roboreward.dataset import DatasetFormatError, read_split, resolve_dataset
from roboreward.training.collator import IGNORE_INDEX, RewardCollator
from roboreward.training.config import RecipeError
from roboreward.types import Example

logger = logging.getLogger(__name__)

SKIP_LOG = "skipped_videos.jsonl"
RUN_INFO = "run_info.json"


# --------------------------------------------------------------------------------------------------------------
# Validation metrics from the answer-token logits
# --------------------------------------------------------------------------------------------------------------
def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Index of the (single) labelled token of each row; its logits sit one position earlier."""
    mask = labels != IGNORE_INDEX
    if not bool(mask.any(dim=-1).all()):
        raise ValueError("a row without an answer token reached the metric")
    return mask.float().argmax(dim=-1).to(torch.long)


@dataclass
class ScoreLogits:
    """``preprocess_logits_for_metrics``: (B, L, V) logits -> the (B, 5) score-token logits at the answer."""

    score_ids: list[int]

    def __call__(self, logits: Any, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, tuple):
            logits = logits[0]
        pos = answer_positions(labels) - 1
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, pos][:, self.score_ids].float()


@dataclass
class RewardMetrics:
    """``compute_metrics``: MAE (the selection metric), accuracy, off-by-one, Spearman, macro MAE over subsets
    (:func:`roboreward.evaluation.metrics.compute`) and the MAE of the expected score, over the validation split."""

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
    """The scalar metrics of :func:`roboreward.evaluation.metrics.compute` plus ``mae_expected`` (MAE of E[score])."""
    from roboreward.evaluation.metrics import compute

    full = compute(np.asarray(preds, dtype=np.int64), np.asarray(refs, dtype=np.int64), subsets)
    out = {k: float(full[k]) for k in ("mae", "accuracy", "off_by_one_accuracy", "spearman")}
    if "macro_mae" in full:
        out["macro_mae"] = float(full["macro_mae"])
    out["mae_expected"] = float(np.abs(np.asarray(expected, dtype=np.float64) - np.asarray(refs)).mean())
    return out


# --------------------------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------------------------
class RewardSFTTrainer(SFTTrainer):
    """SFTTrainer for answer-digit targets: the loss and the evaluation logits come from the last two positions
    only (left-padded batches end with the answer digit), and the logs carry the count of skipped videos.

    It writes no model card of its own (TRL's trainer writes one at every checkpoint): the run writes ours
    (:mod:`roboreward.training.card`) when the best model is saved.
    """

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
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

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The loss, and the last two positions' logits and labels (what :class:`ScoreLogits` reads)."""
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

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """No Trainer card: the run writes the RoboReward card (:func:`roboreward.training.card.write_model_card`)."""


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------
def find_dataset(name: str | None, splits: Sequence[str], revision: str | None = None) -> Path:
    """The dataset folder of a recipe (a local folder, else a Hub dataset repo), checked before any model loads.

    A name that is neither an existing folder nor a reachable Hub repo raises :class:`RecipeError` saying so
    (and, for a missing ``data/sample``, how to build it) instead of a traceback after the model has loaded.
    """
    if not name:
        raise RecipeError("dataset_name is required (a dataset folder or a Hub dataset repo id)")
    local = Path(name).expanduser()
    if local.exists():
        root = resolve_dataset(local, splits=tuple(splits))
    else:
        try:
            root = resolve_dataset(name, splits=tuple(splits), revision=revision)
        except Exception as exc:  # any Hub failure (offline, missing repo, auth) becomes one clear message
            hint = (
                " Build the bundled sample with `roboreward build --source sample --out data/sample`."
                if local.as_posix().rstrip("/").endswith("data/sample")
                else ""
            )
            raise RecipeError(
                f"dataset_name {name!r}: no such folder (looked in {os.getcwd()}) and not available as a Hub "
                f"dataset ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no details'}).{hint}"
            ) from None
    for split in splits:
        try:
            read_split(root, split, limit=1)
        except DatasetFormatError as exc:
            raise RecipeError(f"dataset_name {name!r}: {exc}") from None
    return root


def load_examples(root: str | os.PathLike, split: str, limit: int | None = None) -> list[Example]:
    """Rows of a released-layout split, validated by :func:`roboreward.dataset.read_split` (videos resolved)."""
    rows = read_split(root, split, limit=limit)
    if not rows:
        raise RecipeError(f"{root}: split {split!r} has no examples")
    return rows


def training_dataset(examples: Sequence[Example]) -> Any:
    """The columns the collator and the metrics read (``video_path``, ``task``, ``reward``, ``subset``), as the
    ``datasets.Dataset`` that ``SFTTrainer`` requires."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "video_path": [str(e.video_path) for e in examples],
            "task": [e.task for e in examples],
            "reward": [e.reward for e in examples],
            "subset": [e.subset for e in examples],
        }
    )


# --------------------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------------------
def merge_adapter(base: str, adapter_dir: Path, out: Path, *, dtype: str = "auto") -> Path:
    """Load the base model unquantized, merge the LoRA adapter, save safetensors to ``out``."""
    from peft import PeftModel

    from roboreward.scoring.vlm import load_model

    base_model, _ = load_model(base, dtype="bfloat16" if dtype == "auto" else dtype)
    merged = PeftModel.from_pretrained(base_model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    return out


def count_lines(path: Path) -> int:
    """Non-empty lines of a text file (0 when it does not exist)."""
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def checkpoint_name(path: str | None, output_dir: str | os.PathLike) -> str | None:
    """A checkpoint path relative to the run folder (``checkpoint-200``): no absolute path in cards or run info."""
    if not path:
        return None
    p = Path(path)
    try:
        return p.resolve().relative_to(Path(output_dir).resolve()).as_posix()
    except ValueError:
        return p.name
