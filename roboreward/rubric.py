"""The 1-5 progress rubric, the reward prompt and answer parsing shared by every stage.

The prompt in ``prompts/reward_prompt.txt`` reproduces the one published on the model cards of the
released checkpoints ``teetone/RoboReward-4B`` / ``-8B`` so they score correctly through our API, and our
recipes train with the very same text. Keep the template in that one file.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

SCORES: tuple[int, ...] = (1, 2, 3, 4, 5)
MAX_ERROR: int = 4  # |5 - 1|: an unparseable answer counts at the maximum error, as HELM does

#: Short names used on the released model cards.
SCORE_NAMES: dict[int, str] = {
    1: "No Success",
    2: "Minimal Progress",
    3: "Partial Completion",
    4: "Near Completion",
    5: "Perfect Completion",
}

#: The paper's rubric wording (used in relabeling prompts and cards).
RUBRIC: dict[int, str] = {
    1: "no goal-relevant change for the task command",
    2: "a small but insufficient change toward the goal",
    3: "in the general goal region but violates requirements that make it not a success",
    4: "in region and intent but misses a precise tolerance or requirement",
    5: "the final state satisfies all the requirements",
}

ANSWER_PREFIX = "ANSWER: "
_PLACEHOLDER = "{instruction}"


@cache
def load_prompt(name: str) -> str:
    """Return the text of ``roboreward/prompts/<name>``."""
    return resources.files("roboreward.prompts").joinpath(name).read_text(encoding="utf-8")


def reward_prompt(instruction: str, template: str | None = None) -> str:
    """Fill the reward prompt for ``instruction`` (braces in the instruction are kept verbatim)."""
    text = template if template is not None else load_prompt("reward_prompt.txt")
    if _PLACEHOLDER not in text:
        raise ValueError(f"prompt template has no {_PLACEHOLDER} placeholder")
    instruction = " ".join(str(instruction).split())
    if not instruction:
        raise ValueError("instruction is empty")
    return text.replace(_PLACEHOLDER, instruction).rstrip("\n")


def answer_text(score: int) -> str:
    """The assistant's target answer for ``score`` (what the recipes train on)."""
    check_score(score)
    return f"{ANSWER_PREFIX}{int(score)}"


def check_score(score: object, *, where: str = "reward") -> int:
    """Return ``score`` as an int in 1..5 or raise a ValueError naming ``where``."""
    try:
        value = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {score!r} is not a number in 1..5") from None
    if value != value or value not in SCORES:  # NaN or not an integer 1..5
        raise ValueError(f"{where}: {score!r} is outside 1..5")
    return int(value)


_ANSWER_RE = re.compile(r"answer\s*[:=]?\s*\**\s*\[?\s*([1-5])\b", re.IGNORECASE)
_LEADING_RE = re.compile(r"^\s*\**\s*([1-5])\b")


def parse_answer(text: str | None) -> int | None:
    """Parse a 1-5 score from generated text, HELM style.

    First a case-insensitive ``answer: <number>`` match (the last one wins, so a model that restates the
    format before answering is read correctly), falling back to a number at the start of the output.
    Returns ``None`` when nothing parses: callers count that at :data:`MAX_ERROR`.
    """
    if not text:
        return None
    matches = _ANSWER_RE.findall(text)
    if matches:
        return int(matches[-1])
    m = _LEADING_RE.match(text)
    return int(m.group(1)) if m else None


def progress_to_label(progress: float, bins: tuple[float, float, float, float] = (20, 40, 60, 80)) -> int:
    """Map a RoboArena 0-100 progress score to 1..5 with upper-exclusive bin edges.

    Default bins: [0,20) -> 1, [20,40) -> 2, [40,60) -> 3, [60,80) -> 4, [80,100] -> 5.
    The official bins are not published; pass your own ``bins`` (four increasing edges).
    """
    p = float(progress)
    if not (0.0 <= p <= 100.0):
        raise ValueError(f"progress {progress!r} is outside 0-100")
    if list(bins) != sorted(bins) or len(bins) != 4:
        raise ValueError(f"bins must be four increasing edges, got {bins!r}")
    return 1 + sum(p >= edge for edge in bins)


#: A simulated failure's progress is capped here, so that label 5 (progress >= 80 %) means a simulator success.
MAX_FAILURE_PROGRESS: float = 0.79


def simulator_progress(success: bool, closed: float) -> float:
    """A simulated episode's progress in [0, 1]: 1.0 on the simulator's success, else ``closed`` (the fraction of
    the object-to-target distance closed) clipped to ``[0, MAX_FAILURE_PROGRESS]``. ``100 *`` this, through
    :func:`progress_to_label`, is the label of the project's Meta-World data (scripts/make_metaworld_reward_data.py)."""
    return 1.0 if success else min(max(float(closed), 0.0), MAX_FAILURE_PROGRESS)
