"""Reward in the loop: a gymnasium wrapper that gives each episode a RoboReward score.

:class:`RewardWrapper` records the frames of every episode (from ``env.render()`` or an observation key), and
when the episode ends (``terminated or truncated``) it scores ``(video, instruction)`` with any
:class:`~roboreward.types.Scorer`. The episodic reward goes into the final step's reward and ``info``.

* :mod:`~roboreward.rl.wrapper` — :class:`RewardWrapper` itself (the gymnasium API);
* :mod:`~roboreward.rl.frames` — :class:`FrameRecorder` / :class:`FrameBuffer`: frames in bounded memory;
* :mod:`~roboreward.rl.delivery` — :class:`RewardDelivery`: sync/async scoring, timeouts, fallbacks, the
  delivery queue and callbacks, in episode order;
* :mod:`~roboreward.rl.rewards` — :class:`EpisodeReward`, :func:`episode_reward_value`;
* :mod:`~roboreward.rl.mujoco` — headless MuJoCo next to torch.

How well the rewards track success is :func:`roboreward.evaluation.agreement.agreement`. See docs/rl.md.
"""

from __future__ import annotations

try:
    import gymnasium  # noqa: F401
except ImportError as exc:  # pragma: no cover - gymnasium is in the `rl` extra
    raise ImportError("roboreward.rl needs gymnasium: pip install 'roboreward[rl]'") from exc

from roboreward.rl.delivery import DeliverySettings, RewardDelivery
from roboreward.rl.frames import FrameBuffer, FrameRecorder
from roboreward.rl.mujoco import lighten_mujoco_rendering, release_mujoco_rendering, setup_headless_mujoco
from roboreward.rl.rewards import EpisodeReward, RewardScoringError, episode_reward_value
from roboreward.rl.wrapper import RewardWrapper

__all__ = [
    "DeliverySettings",
    "EpisodeReward",
    "FrameBuffer",
    "FrameRecorder",
    "RewardDelivery",
    "RewardScoringError",
    "RewardWrapper",
    "episode_reward_value",
    "lighten_mujoco_rendering",
    "release_mujoco_rendering",
    "setup_headless_mujoco",
]
