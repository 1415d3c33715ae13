"""Scoring one upload for the page: the score, its rubric sentence, the distribution, the curve, the frame strip."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from roboreward.demo.checks import DemoInputError, Limits, check_instruction, check_video, short, unreadable
from roboreward.rubric import SCORE_NAMES, SCORES, load_prompt
from roboreward.sampling import DEFAULT_MAX_FRAMES
from roboreward.scoring import progress_curve
from roboreward.types import RewardOutput, Scorer
from roboreward.video import VideoDecodeError, VideoInfo, read_video

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass
class DemoResult:
    """Everything the page shows for one (video, instruction)."""

    output: RewardOutput
    info: VideoInfo
    frames: np.ndarray  # (K, H, W, 3) sampled for the strip
    frame_times: list[float]
    curve_times: list[float] = field(default_factory=list)
    curve_progress: list[float] = field(default_factory=list)  # expected progress in [0, 1] per prefix
    voc: float | None = None
    seconds: float = 0.0

    @property
    def probs(self) -> list[float]:
        """The distribution over 1..5 (one-hot on the parsed score for text-only scorers)."""
        if self.output.probs is not None:
            return [float(p) for p in self.output.probs]
        return [1.0 if s == self.output.score else 0.0 for s in SCORES]

    def to_dict(self) -> dict[str, Any]:
        """The JSON the page's "details" box (and API clients) receive."""
        return {
            "score": int(self.output.score),
            "name": SCORE_NAMES[self.output.score],
            "rubric": rubric_sentences()[self.output.score],
            "probs": self.probs,
            "has_distribution": self.output.probs is not None,
            "expected": self.output.expected,
            "progress": self.output.progress,
            "parsed": self.output.parsed,
            "raw_text": self.output.raw_text,
            "curve": {
                "times": self.curve_times,
                "progress": self.curve_progress,
                "voc": self.voc,
            },
            "frame_times": self.frame_times,
            "video": {
                "frames": self.info.num_frames,
                "fps": self.info.fps,
                "width": self.info.width,
                "height": self.info.height,
                "duration_s": self.info.duration,
            },
            "seconds": self.seconds,
        }


@cache
def rubric_sentences() -> dict[int, str]:
    """The card's rubric line for each score, read from the reward prompt file (``N - Name: sentence``)."""
    found = {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"^([1-5]) - [^:\n]+:\s*(.+)$", load_prompt("reward_prompt.txt"), re.MULTILINE)
    }
    missing = [s for s in SCORES if s not in found]
    if missing:
        raise ValueError(f"reward_prompt.txt has no rubric line for score(s) {missing}")
    return found


def analyse(
    scorer: Scorer,
    video: str | os.PathLike | None,
    instruction: str | None,
    *,
    limits: Limits = Limits(),
    curve_points: int = 8,
    strip_frames: int = DEFAULT_MAX_FRAMES,
) -> DemoResult:
    """Validate the inputs, score the video and sample the frame strip (the frames the scorer sees when it
    exposes ``sample``, else ``strip_frames`` uniform ones).

    With ``curve_points`` > 1 the dense progress curve (:func:`roboreward.scoring.progress_curve`) is scored
    too and the headline score is its last point, the whole video, so nothing is scored twice (the curve
    decodes a bounded uniform proxy of the video, see :func:`roboreward.scoring.progress_curve`). Raises
    :class:`DemoInputError` on bad input.
    """
    info = check_video(video, limits)
    text = check_instruction(instruction, limits)
    path = str(video)
    want_curve = curve_points > 1
    start = time.perf_counter()
    try:
        sample = getattr(scorer, "sample", None)
        sampled = sample(path) if callable(sample) else read_video(path, num_frames=min(strip_frames, info.num_frames))
        if want_curve:
            curve = progress_curve(scorer, path, text, num_points=int(curve_points))
            output = curve.outputs[-1]
        elif callable(sample) and callable(getattr(scorer, "score_sampled", None)):
            output = scorer.score_sampled([sampled], [text])[0]  # the strip's frames: decode once
        else:
            output = scorer.score(path, text)
    except VideoDecodeError as exc:  # the container probed fine but its frames do not decode
        raise DemoInputError(unreadable(Path(path), exc)) from None
    result = DemoResult(
        output=output,
        info=info,
        frames=sampled.frames,
        frame_times=[round(i / info.fps, 2) for i in sampled.indices],
    )
    if want_curve:
        result.curve_times = [float(t) for t in curve.times]
        result.curve_progress = [float(p) for p in curve.progress]
        result.voc = float(curve.voc)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def headline(result: DemoResult, model_name: str) -> str:
    """The markdown above the charts: score, rubric sentence, expected progress."""
    out = result.output
    lines = [
        f"## {out.score} / 5 — {SCORE_NAMES[out.score]}",
        f"*{rubric_sentences()[out.score]}*",
        "",
    ]
    if out.expected is not None:
        lines.append(f"**Expected progress:** {100 * out.progress:.0f}% (E[score] = {out.expected:.2f})")
    if out.probs is None:
        lines.append("\nThis scorer answered with text only (no distribution): the bar shows its parsed answer.")
    if result.curve_times:
        lines.append(
            f"\n**Progress curve:** {len(result.curve_times)} prefixes scored, "
            f"value-order correlation (VOC) {result.voc:+.2f}"
        )
    if not out.parsed:
        lines.append(
            f"\n⚠️ The answer could not be parsed (shown as 1; evaluation counts it at the maximum error): "
            f"{short(repr(out.raw_text))}"
        )
    info = result.info
    lines.append(
        f"\n<sub>model `{model_name}` · video {info.width}x{info.height}, {info.num_frames} frames at "
        f"{info.fps:g} fps ({info.duration:.1f} s) · scored in {result.seconds:.1f} s</sub>"
    )
    return "\n".join(lines)


def distribution_frame(result: DemoResult) -> pd.DataFrame:
    """Rows (score, probability) for the bar chart."""
    import pandas as pd

    return pd.DataFrame({"score": [str(s) for s in SCORES], "probability": [round(p, 4) for p in result.probs]})


def curve_frame(result: DemoResult) -> pd.DataFrame:
    """Rows (time in s, expected progress in %) for the progress curve."""
    import pandas as pd

    return pd.DataFrame(
        {"time_s": result.curve_times, "progress_pct": [round(100 * p, 2) for p in result.curve_progress]}
    )
