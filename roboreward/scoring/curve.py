"""Dense progress curves: any scorer on growing prefixes of one video, with the value-order correlation (VOC)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.rubric import SCORES
from roboreward.scoring.common import DEFAULT_FRAMES_FPS, Frames, is_frames, probe_within_budget
from roboreward.types import RewardOutput, Scorer, VideoInput
from roboreward.video import as_frames, read_video


@dataclass
class ProgressCurve:
    """Scores of growing prefixes: ``times`` (end of each prefix, seconds), their outputs, and VOC.

    ``voc`` is the Spearman correlation between expected progress and time, the benchmark's
    (:func:`roboreward.evaluation.correlation.voc`: 0 when undefined, e.g. a flat curve); ``fractions`` are the
    prefix lengths as fractions of the video.
    """

    times: list[float]
    outputs: list[RewardOutput]
    voc: float
    fractions: list[float] = field(default_factory=list)

    @property
    def progress(self) -> list[float]:
        """Expected progress of each prefix in [0, 1]."""
        return [o.progress for o in self.outputs]

    @property
    def expected(self) -> list[float]:
        return [o.value for o in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "times": self.times,
            "fractions": self.fractions,
            "voc": self.voc,
            "outputs": [o.to_dict() for o in self.outputs],
        }

    def plot(self, path: str | os.PathLike, *, title: str = "") -> Path:
        """Save the curve as a PNG: expected score (with the 1..5 distribution as shading) against time."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        probs = [o.probs for o in self.outputs]
        if all(p is not None for p in probs) and len(self.times) > 1:
            grid = np.array(probs).T  # (5, points)
            t = np.asarray(self.times)
            mid = (t[1:] + t[:-1]) / 2
            edges = np.r_[t[0] - (mid[0] - t[0]), mid, t[-1] + (t[-1] - mid[-1])]
            mesh = ax.pcolormesh(edges, np.arange(0.5, 6.0), grid, cmap="Blues", vmin=0, vmax=1, alpha=0.7)
            fig.colorbar(mesh, ax=ax, label="p(score)")
        ax.plot(self.times, self.expected, "o-", color="tab:orange", label="expected score")
        ax.set_ylim(0.5, 5.5)
        ax.set_yticks(list(SCORES))
        ax.set_xlabel("prefix end (s)")
        ax.set_ylabel("score")
        ax.set_title(title or f"progress curve (VOC {self.voc:.2f})")
        ax.legend(loc="upper left")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out


CURVE_MAX_FRAMES = 256
CURVE_MAX_BYTES = 512 * 2**20


def _all_frames(video: VideoInput) -> Frames:
    if is_frames(video):
        return Frames(as_frames(np.asarray(video)), float(getattr(video, "fps", DEFAULT_FRAMES_FPS)))
    info = probe_within_budget(video)  # type: ignore[arg-type]  # a clear error on bad input before decoding
    # Scorers re-sample each prefix to a few frames, so a uniform proxy of the video is enough: at most
    # CURVE_MAX_FRAMES frames and CURVE_MAX_BYTES of pixels are decoded, whatever the video's length.
    per_frame = max(1, info.width * info.height * 3)
    k = max(2, min(info.num_frames, CURVE_MAX_FRAMES, CURVE_MAX_BYTES // per_frame))
    sampled = read_video(video, num_frames=k)
    return Frames(sampled.frames, sampled.sampled_fps)


def progress_curve(
    scorer: Scorer,
    video: VideoInput,
    instruction: str,
    num_points: int = 8,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ProgressCurve:
    """Score ``num_points`` growing prefixes (1/n, 2/n, ..., all of the video) with any scorer.

    Prefixes are passed as :class:`Frames` (frame arrays that keep the video's fps) in one ``score_batch``
    call, so a batched scorer scores them together. ``progress(done, total)`` is called when finished.
    """
    from roboreward.evaluation.correlation import voc

    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    frames = _all_frames(video)
    total = len(frames)
    ends = sorted({max(1, math.ceil(total * k / num_points)) for k in range(1, num_points + 1)})
    prefixes = [frames[:e] for e in ends]
    outputs = scorer.score_batch(prefixes, [instruction] * len(prefixes))
    if progress is not None:
        progress(len(prefixes), len(prefixes))
    times = [e / frames.fps for e in ends]
    values = [o.value for o in outputs]
    # the benchmark's VOC (roboreward.evaluation.correlation.voc): the prefixes are in time order
    return ProgressCurve(times=times, outputs=outputs, voc=voc(values), fractions=[e / total for e in ends])
