"""How frames are sampled from a video: the one settings object with the one set of defaults.

Training (the collator), scoring (local and API), relabeling, evaluation and the CLI all take a
:class:`FrameSampling`; its defaults are the model card's and the training recipe's (2 fps, clamped to
4..8 frames). Relabeling asks for more frames of the same kind through :meth:`FrameSampling.replace`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

DEFAULT_FPS = 2.0
DEFAULT_MIN_FRAMES = 4
DEFAULT_MAX_FRAMES = 8

#: The keys a results file, run info or model card records for frame sampling.
SAMPLING_KEYS: tuple[str, ...] = ("fps", "max_frames", "min_frames", "num_frames")


@dataclass(frozen=True)
class FrameSampling:
    """``fps`` frames per second of video, clamped to ``[min_frames, max_frames]``, or an exact ``num_frames``
    (which then wins over ``fps``). Always ends on the last frame: rewards judge the final state."""

    fps: float | None = DEFAULT_FPS
    num_frames: int | None = None
    max_frames: int = DEFAULT_MAX_FRAMES
    min_frames: int = DEFAULT_MIN_FRAMES

    def __post_init__(self) -> None:
        if self.num_frames is not None:
            if self.num_frames < 1:
                raise ValueError(f"frame sampling: num_frames must be >= 1, got {self.num_frames}")
            object.__setattr__(self, "fps", None)
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"frame sampling: fps must be > 0, got {self.fps}")
        if self.min_frames < 1 or self.max_frames < self.min_frames:
            raise ValueError(
                f"frame sampling: need 1 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}"
            )

    @classmethod
    def from_options(cls, **options: Any) -> FrameSampling:
        """Defaults overridden by the options that are not ``None`` (CLI flags, recipe keys, kwargs)."""
        unknown = set(options) - set(SAMPLING_KEYS)
        if unknown:
            raise TypeError(f"frame sampling: unknown option(s) {sorted(unknown)}; known: {list(SAMPLING_KEYS)}")
        return cls(**{k: v for k, v in options.items() if v is not None})

    def replace(self, **changes: Any) -> FrameSampling:
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`roboreward.video.read_video` / :func:`roboreward.video.sample_indices`."""
        return {
            "num_frames": self.num_frames,
            "fps": self.fps,
            "max_frames": self.max_frames,
            "min_frames": self.min_frames,
        }

    def indices(self, total: int, source_fps: float) -> list[int]:
        """Frame indices to take from a ``total``-frame video at ``source_fps``."""
        from roboreward.video import sample_indices

        return sample_indices(total, source_fps, **self.kwargs())

    def read(self, path: Any) -> Any:
        """Decode only the sampled frames of a video path, mp4 bytes or a frame array (a ``SampledVideo``)."""
        from roboreward.video import read_video

        return read_video(os.fspath(path) if isinstance(path, os.PathLike) else path, **self.kwargs())

    def as_dict(self) -> dict[str, Any]:
        """The settings, in :data:`SAMPLING_KEYS` order (recorded in run info, model cards and results)."""
        return {k: getattr(self, k) for k in SAMPLING_KEYS}
