"""The video-aware SFT collator for reward-model training.

TRL's VLM collator handles images only, so this one builds each example itself: the released-card prompt
with the rubric and the task (:func:`roboreward.vlm.prompt_text`, primed with ``ANSWER: ``), the digit of
the reward appended as the only target, and the video sampled uniformly (:func:`roboreward.video.read_video`)
and encoded with the processor (:func:`roboreward.vlm.encode`). Batches are **left padded**, exactly as the
scoring API encodes them, so the answer digit is the last token of every row and everything else is masked
(``labels == -100``).

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
from roboreward.video import SampledVideo, VideoDecodeError, read_video
from roboreward.vlm import Family, encode, prompt_text, score_token_ids

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
#: Columns every training example must carry (the released ``metadata.jsonl`` columns, video resolved).
EXAMPLE_COLUMNS: tuple[str, ...] = ("video_path", "task", "reward")


@dataclass
class VideoSampling:
    """How frames are sampled from each video: ``fps`` (clamped to ``[min_frames, max_frames]``) or an exact
    ``num_frames``. Recorded in the run info and model card."""

    fps: float | None = 2.0
    num_frames: int | None = None
    max_frames: int = 8
    min_frames: int = 4

    def __post_init__(self) -> None:
        if self.fps is not None and self.num_frames is not None:
            raise ValueError("video sampling: give fps or num_frames, not both")
        if self.min_frames < 1 or self.max_frames < self.min_frames:
            raise ValueError(
                f"video sampling: need 1 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}"
            )

    def read(self, path: str | os.PathLike) -> SampledVideo:
        return read_video(
            path, num_frames=self.num_frames, fps=self.fps, max_frames=self.max_frames, min_frames=self.min_frames
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "num_frames": self.num_frames,
            "max_frames": self.max_frames,
            "min_frames": self.min_frames,
        }


@dataclass
class RewardCollator:
    """Turn examples ``{"video_path", "task", "reward", ...}`` into a left-padded batch with answer-only labels."""

    processor: Any
    family: Family
    sampling: VideoSampling = field(default_factory=VideoSampling)
    skip_log: str | os.PathLike | None = None
    fallback: Sequence[Mapping[str, Any]] = ()
    template: str | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        self.score_ids = score_token_ids(self.processor.tokenizer)
        self._fallback_pos = 0

    # ---- one example -------------------------------------------------------------------------------------
    def _prepare(self, ex: Mapping[str, Any]) -> tuple[str, SampledVideo]:
        missing = [c for c in EXAMPLE_COLUMNS if c not in ex]
        if missing:
            raise KeyError(f"training example is missing column(s) {missing}; it has {sorted(ex)}")
        reward = check_score(ex["reward"], where=f"{ex['video_path']}: reward")
        video = self.sampling.read(ex["video_path"])
        return prompt_text(self.processor, ex["task"], template=self.template) + str(reward), video

    def _record_skip(self, ex: Mapping[str, Any], exc: Exception) -> None:
        self.skipped += 1
        logger.warning("skipping undecodable video %s: %s", ex.get("video_path"), exc)
        if self.skip_log is not None:
            Path(self.skip_log).parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"video_path": str(ex.get("video_path")), "task": ex.get("task"), "error": str(exc)})
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
    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
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
