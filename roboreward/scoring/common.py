"""What every scorer shares: frame arrays that carry their rate, sampling a video input, outputs from a
distribution over 1..5, and a scorer's recorded settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.rubric import SCORES
from roboreward.sampling import FrameSampling
from roboreward.types import RewardOutput, VideoInput
from roboreward.video import (
    SampledVideo,
    VideoDecodeError,
    VideoInfo,
    as_frames,
    check_pixel_budget,
    probe,
    read_video,
)

DEFAULT_MODEL = "teetone/RoboReward-4B"
#: Frame rate assumed for in-memory frame arrays that do not carry one (the released videos are 10 fps).
DEFAULT_FRAMES_FPS = 10.0


class Frames(np.ndarray):
    """A (T, H, W, 3) uint8 frame array that remembers its frame rate (``.fps``); slices keep it.

    Scorers treat it like any frame array; those that sample by time (``RewardModel``, ``ApiScorer``) use
    ``fps`` instead of assuming :data:`DEFAULT_FRAMES_FPS`. :func:`progress_curve` passes prefixes this way.
    """

    fps: float

    def __new__(cls, frames: np.ndarray, fps: float = DEFAULT_FRAMES_FPS) -> Frames:
        obj = np.asarray(frames).view(cls)
        obj.fps = float(fps)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.fps = getattr(obj, "fps", DEFAULT_FRAMES_FPS)


def is_frames(video: Any) -> bool:
    """True for in-memory frames (an array or a sequence of frames), False for paths and mp4 bytes."""
    return isinstance(video, np.ndarray) or (
        isinstance(video, Sequence) and not isinstance(video, str | bytes | bytearray)
    )


def check_exists(video: Any) -> None:
    """Raise :class:`VideoDecodeError` naming the path when a path input does not exist."""
    if isinstance(video, str | Path) and not Path(video).exists():
        raise VideoDecodeError(f"{video}: no such video file")


def resolve_sampling(sampling: FrameSampling | None = None, **options: Any) -> FrameSampling:
    """``sampling`` (default :class:`~roboreward.sampling.FrameSampling`) with ``options`` (``fps``,
    ``max_frames``, ``min_frames``, ``num_frames``; ``None`` = not given) applied. A ``max_frames`` below the
    minimum lowers ``min_frames`` with it unless ``min_frames`` is given too (the scorers always accepted that)."""
    base = sampling or FrameSampling()
    if options.get("max_frames") is not None and options.get("min_frames") is None:
        options["min_frames"] = min(base.min_frames, options["max_frames"])
    return base.replace(**options)


def probe_within_budget(video: str | Path | bytes) -> VideoInfo:
    """The stream header of an encoded video, refused (:class:`~roboreward.video.VideoTooLargeError`, naming the
    file) before any decoding when it promises more pixels than :data:`roboreward.video.PIXEL_BUDGET` or frames
    larger than :data:`roboreward.video.FRAME_PIXEL_BUDGET` (read when called, so they can be changed)."""
    from roboreward import video as video_io

    check_exists(video)
    info = probe(video)
    where = "<bytes>" if isinstance(video, bytes | bytearray) else str(video)
    check_pixel_budget(info, video_io.PIXEL_BUDGET, frame_budget=video_io.FRAME_PIXEL_BUDGET, where=where)
    return info


def sample_video(video: VideoInput, sampling: FrameSampling | None = None, **options: Any) -> SampledVideo:
    """Uniformly sample a path, mp4 bytes or frames (decoding only the needed frames of encoded video).

    ``sampling`` with ``options`` applied (see :func:`resolve_sampling`). Frame arrays use their ``.fps``
    (:class:`Frames`) or :data:`DEFAULT_FRAMES_FPS`. Videos shorter than ``min_frames`` are padded by repeating frames.
    """
    sampling = resolve_sampling(sampling, **options)
    if is_frames(video):
        source_fps = float(getattr(video, "fps", DEFAULT_FRAMES_FPS))
        arr = as_frames(np.asarray(video))
        idx = sampling.indices(len(arr), source_fps)
        return SampledVideo(frames=arr[idx], indices=idx, source_fps=source_fps, total_frames=len(arr))
    probe_within_budget(video)  # type: ignore[arg-type]
    return read_video(video, **sampling.kwargs())


def output_from_probs(probs: Sequence[float], raw_text: str | None = None) -> RewardOutput:
    """A RewardOutput from a distribution over 1..5: argmax score and expected score."""
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum()
    return RewardOutput(
        score=int(SCORES[int(np.argmax(p))]),
        probs=[float(x) for x in p],
        expected=float(np.dot(p, SCORES)),
        raw_text=raw_text,
    )


def scorer_settings(scorer: Any) -> dict[str, Any]:
    """A scorer's ``settings`` (fps, frames, model) or what can be said about an arbitrary scorer."""
    settings = getattr(scorer, "settings", None)
    if isinstance(settings, dict):
        return dict(settings)
    return {"scorer": type(scorer).__name__, "name": getattr(scorer, "name", "")}


__all__ = [
    "DEFAULT_FRAMES_FPS",
    "DEFAULT_MODEL",
    "Frames",
    "check_exists",
    "is_frames",
    "output_from_probs",
    "probe_within_budget",
    "resolve_sampling",
    "sample_video",
    "scorer_settings",
]
