"""RoboReward: robot-video reward-model datasets, training, evaluation and demos.

Heavy dependencies (torch, transformers, datasets, gradio) are imported lazily inside the stage modules,
so ``import roboreward`` and the CLI's ``--help`` stay fast.
"""

from roboreward.rubric import RUBRIC, SCORE_NAMES, SCORES, parse_answer, reward_prompt
from roboreward.types import Episode, Example, RewardOutput, Scorer

__version__ = "0.1.0"

__all__ = [
    "RUBRIC",
    "SCORES",
    "SCORE_NAMES",
    "Episode",
    "Example",
    "RewardOutput",
    "Scorer",
    "parse_answer",
    "reward_prompt",
    "__version__",
]
