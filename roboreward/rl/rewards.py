"""What one finished episode is worth: the :class:`EpisodeReward` record and the reward value of a score."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from roboreward.types import RewardOutput

RewardFrom = Literal["score", "expected"]


class RewardScoringError(RuntimeError):
    """An episode could not be scored (no frames, the scorer failed or timed out) and ``on_error="raise"``."""


@dataclass
class EpisodeReward:
    """The reward model's verdict on one finished episode.

    ``reward`` is the value put into the env reward (per ``reward_from`` / ``normalize``, or
    ``fallback_reward``); ``score``/``probs``/``expected``/``progress`` come from the scorer (``None`` on a
    fallback). ``num_frames`` frames were sent to the scorer, chosen from ``recorded_frames`` kept frames
    (``frame_steps`` = the step index of each, 0 = the frame after reset) of a ``length``-step episode.
    ``fps`` is the rate (in env time) the sent frames were tagged with. ``final_info`` is the env's ``info``
    at the last step (e.g. Meta-World's ``success``); ``video`` the frames sent (with ``keep_video=True``).
    """

    episode: int
    reward: float
    instruction: str
    score: int | None = None
    probs: list[float] | None = None
    expected: float | None = None
    progress: float | None = None
    raw_text: str | None = None
    parsed: bool = True
    fallback: bool = False
    error: str | None = None
    length: int = 0
    num_frames: int = 0
    recorded_frames: int = 0
    missing_frames: int = 0
    frame_steps: list[int] = field(default_factory=list)
    fps: float = 0.0
    scorer: str = ""
    seconds: float = 0.0
    final_info: dict[str, Any] = field(default_factory=dict, repr=False)
    video: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (what ``info`` carries); ``final_info`` and ``video`` are left out to keep it small."""
        return {k: v for k, v in asdict(self).items() if k not in ("final_info", "video")}


@dataclass
class EpisodeJob:
    """A finished episode waiting to be scored: the frames to send and what is known about the episode."""

    episode: int
    instruction: str
    video: np.ndarray | None
    fps: float
    frame_steps: list[int]
    recorded: int
    missing: int
    calls: int
    length: int
    final_info: dict[str, Any]
    error: str | None = None  # set when the job is known to fail before scoring (no frames)


def episode_reward_value(output: RewardOutput, reward_from: RewardFrom = "score", normalize: bool = False) -> float:
    """The scalar reward for a scorer output.

    ``reward_from="score"``: the 1..5 score; ``"expected"``: E[score] under the distribution (the score when
    the scorer gives none). ``normalize`` maps 1..5 linearly onto [0, 1] ((x - 1) / 4).
    """
    if reward_from == "score":
        value = float(output.score)
    elif reward_from == "expected":
        value = output.value
    else:
        raise ValueError(f"reward_from must be 'score' or 'expected', got {reward_from!r}")
    return (value - 1.0) / 4.0 if normalize else value
