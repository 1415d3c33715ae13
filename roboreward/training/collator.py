"""The video-aware SFT collator for reward-model training.

TRL's VLM collator handles images only, so this one builds each example itself: the released-card prompt
with the rubric and the task (:func:`roboreward.scoring.vlm.prompt_text`, primed with ``ANSWER: ``), the digit of
the reward appended as the only target, and the video sampled by a :class:`~roboreward.sampling.FrameSampling`
and encoded with the processor (:func:`roboreward.scoring.vlm.encode`). Batches are **left padded**, exactly as the
scoring API encodes them, so the answer digit is the last token of every row and everything else is masked
(``labels == -100``).

Examples are :class:`roboreward.types.Example` rows read by :func:`roboreward.dataset.read_split` (their
``video_path`` resolved), or mappings with ``video_path``, ``task`` and ``reward`` (rows of a ``datasets.Dataset``).

A video that cannot be decoded mid-epoch does not stop training: the example is dropped from its batch,
counted, and appended to ``skip_log`` (one JSON line per skip, safe across dataloader workers). A batch whose
every video fails is refilled from ``fallback`` examples so the step still has data.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roboreward.rubric import check_score
from roboreward.sampling import FrameSampling
from roboreward.scoring.vlm import Family, encode, prompt_text, score_token_ids
from roboreward.types import Example
from roboreward.video import SampledVideo, VideoDecodeError

#: A training example: a dataset row, or a mapping with the :data:`EXAMPLE_COLUMNS`.
TrainingExample = Example | Mapping[str, Any]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
#: Columns every training example must carry (the released ``metadata.jsonl`` columns, video resolved).
EXAMPLE_COLUMNS: tuple[str, ...] = ("video_path", "task", "reward")


def example_fields(ex: TrainingExample) -> tuple[Any, Any, Any]:
    """``(video_path, task, reward)`` of a training example; a KeyError names the missing columns."""
    if isinstance(ex, Example):
        if ex.video_path is None:
            raise KeyError(f"training example {ex.file_name!r} has no video_path (read it with read_split)")
        return ex.video_path, ex.task, ex.reward
    missing = [c for c in EXAMPLE_COLUMNS if c not in ex]
    if missing:
        raise KeyError(f"training example is missing column(s) {missing}; it has {sorted(ex)}")
    return ex["video_path"], ex["task"], ex["reward"]


@dataclass
class RewardCollator:
    """Turn examples ``{"video_path", "task", "reward", ...}`` into a left-padded batch with answer-only labels."""

    processor: Any
    family: Family
    sampling: FrameSampling = field(default_factory=FrameSampling)
    skip_log: str | os.PathLike | None = None
    fallback: Sequence[TrainingExample] = ()
    template: str | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        self.score_ids = score_token_ids(self.processor.tokenizer)
        self._fallback_pos = 0

    # ---- one example -------------------------------------------------------------------------------------
    def _prepare(self, ex: TrainingExample) -> tuple[str, SampledVideo]:
        video_path, task, reward = example_fields(ex)
        reward = check_score(reward, where=f"{video_path}: reward")
        video = self.sampling.read(video_path)
        return prompt_text(self.processor, task, template=self.template) + str(reward), video

    def _record_skip(self, ex: TrainingExample, exc: Exception) -> None:
        self.skipped += 1
        video_path, task, _ = example_fields(ex)
        logger.warning("skipping undecodable video %s: %s", video_path, exc)
        if self.skip_log is not None:
            Path(self.skip_log).parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"video_path": str(video_path), "task": task, "error": str(exc)})
            with open(self.skip_log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def _refill(self) -> tuple[str, SampledVideo]:
        for _ in range(len(self.fallback)):
            ex = self.fallback[self._fallback_pos % len(self.fallback)]
            self._fallback_pos += 1
            try:
                return self._prepare(ex)
            except VideoDecodeError as exc:
                self._record_skip(ex, exc)
        raise VideoDecodeError(
            f"every video of a batch failed to decode and no fallback decodes ({self.skipped} skipped)"
        )

    # ---- the batch -----------------------------------------------------------------------------------------
    def __call__(self, examples: Sequence[TrainingExample]) -> dict[str, Any]:
        texts: list[str] = []
        videos: list[SampledVideo] = []
        for ex in examples:
            try:
                text, video = self._prepare(ex)
            except VideoDecodeError as exc:
                self._record_skip(ex, exc)
                continue
            texts.append(text)
            videos.append(video)
        if not texts:
            text, video = self._refill()
            texts, videos = [text], [video]
        batch = encode(self.processor, self.family, texts, videos, padding_side="left")
        ids = batch["input_ids"]
        last = ids[:, -1].tolist()
        bad = [i for i, t in enumerate(last) if t not in self.score_ids]
        if bad:
            raise ValueError(
                f"the answer digit is not the last token of row(s) {bad} (got ids {[last[i] for i in bad]}); "
                "the tokenizer must split 'ANSWER: <digit>' into a single digit token"
            )
        labels = ids.new_full(ids.shape, IGNORE_INDEX)
        labels[:, -1] = ids[:, -1]
        batch["labels"] = labels
        return dict(batch)
