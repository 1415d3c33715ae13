""":class:`RewardWrapper`: the gymnasium API around a :class:`FrameRecorder` and a :class:`RewardDelivery`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from roboreward.rl.delivery import DeliverySettings, RewardDelivery, resolve_scorer
from roboreward.rl.frames import DEFAULT_SENT_FRAMES, FrameRecorder
from roboreward.rl.mujoco import release_mujoco_rendering
from roboreward.rl.rewards import EpisodeReward, RewardFrom
from roboreward.types import Scorer


class RewardWrapper(gym.Wrapper):
    """Give every episode of ``env`` one RoboReward score, put into the final step's reward.

    Args:
        env: the environment. Wrap it *outside* any ``TimeLimit`` (``gym.make`` adds one) so truncation ends
            the episode here too.
        scorer: a :class:`~roboreward.types.Scorer`, or a spec for :func:`roboreward.scoring.load_scorer`
            (``"tiny"``, a local folder, a Hub id such as ``"teetone/RoboReward-4B"``, ``"openai:<model>@<url>"``);
            ``scorer_kwargs`` go to ``load_scorer``.
        instruction: the task instruction, or a callable ``env -> str`` evaluated at every reset; a
            per-episode override can be passed as ``reset(options={"instruction": ...})``.
        frames: ``"render"`` (``env.render()``; needs ``render_mode="rgb_array"``) or a dict-observation key.
        frame_stride: keep every ``frame_stride``-th frame (the last frame is always kept).
        max_frames: at most this many frames (uniform, first and last included) go to the scorer; ``None``
            sends all. Memory stays bounded by ``2 * max_frames + 1`` frames.
        fps: steps per second of the env (default ``1 / env.unwrapped.dt``, else ``metadata["render_fps"]``,
            else 10); the frames go to the scorer tagged with their rate in env time.
        frame_transform: applied to each frame before it is stored (e.g. ``lambda f: f[::-1]`` to flip).
        reward_from: ``"score"`` (1..5 argmax) or ``"expected"`` (E[score]); ``normalize``: rescale to [0, 1].
        env_reward: ``"replace"`` (non-final steps give 0, the env reward goes to ``info["env_reward"]``)
            or ``"add"`` (env reward + episodic reward at the final step).
        mode: ``"sync"`` (the final step blocks and carries the reward) or ``"async"`` (scored in the
            background; delivered by :meth:`pop_rewards`, ``on_reward`` and ``info["reward_model_ready"]``).
        timeout: seconds one scoring call may run before the fallback is used (``None``: no limit).
        on_error: ``"fallback"`` (warn, use ``fallback_reward``, record the error) or ``"raise"``.
        max_queue: the :meth:`pop_rewards` queue keeps at most this many results (oldest dropped, one warning).
        keep_video: keep the frames sent in :attr:`EpisodeReward.video`; ``on_reward``: called with each
            :class:`EpisodeReward`, in episode order, in the env's thread.

    See docs/rl.md for the ``info`` keys and the failure cases.
    """

    def __init__(
        self,
        env: gym.Env,
        scorer: Scorer | str,
        instruction: str | Callable[[gym.Env], str],
        *,
        frames: str = "render",
        frame_stride: int = 1,
        max_frames: int | None = DEFAULT_SENT_FRAMES,
        fps: float | None = None,
        frame_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        reward_from: RewardFrom = "score",
        normalize: bool = False,
        env_reward: Literal["replace", "add"] = "replace",
        mode: Literal["sync", "async"] = "sync",
        timeout: float | None = None,
        on_error: Literal["fallback", "raise"] = "fallback",
        fallback_reward: float = 0.0,
        on_reward: Callable[[EpisodeReward], None] | None = None,
        keep_video: bool = False,
        max_queue: int | None = 10_000,
        scorer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(env)
        self.recorder = FrameRecorder(
            env, frames, stride=frame_stride, max_frames=max_frames, fps=fps, transform=frame_transform
        )
        self.settings = DeliverySettings(
            reward_from, normalize, env_reward, mode, timeout, on_error, fallback_reward, keep_video, max_queue
        )
        self.delivery = RewardDelivery(resolve_scorer(scorer, scorer_kwargs), self.settings, on_reward)
        self.instruction = instruction
        self.episode = -1  # index of the current episode (0 after the first reset)
        self._step = 0
        self._current_instruction = ""
        self._closed = False

    @property
    def scorer(self) -> Scorer:
        return self.delivery.scorer

    @property
    def fps(self) -> float:
        """Steps per second of the env (what the frames' rate is computed from)."""
        return self.recorder.fps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options) if options else None
        override = options.pop("instruction", None) if options else None
        obs, info = self.env.reset(seed=seed, options=options or None)
        self.episode += 1
        self._step = 0
        self._current_instruction = override if override is not None else self._instruction()
        self.recorder.start()
        self.recorder.record(obs, self.episode, 0)
        return obs, self._with_ready(info)

    def step(self, action):
        if self.recorder.buffer is None:
            raise RuntimeError("call reset() before step()")
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        self._step += 1
        self.recorder.record(obs, self.episode, self._step, last=terminated or truncated)
        info = dict(info)
        info["env_reward"] = float(env_reward)
        reward = float(env_reward) if self.settings.env_reward == "add" else 0.0
        if terminated or truncated:
            job = self.recorder.finish(self.episode, self._current_instruction, self._step, info)
            if self.settings.mode == "sync":
                result = self.delivery.score_now(job)
                reward += result.reward
                info["reward_model"] = result.to_dict()
            else:
                self.delivery.submit(job)
                info["reward_model"] = {"episode": job.episode, "pending": True}
        return obs, reward, terminated, truncated, self._with_ready(info)

    def close(self) -> None:
        """Wait for pending scores (bounded by ``timeout``), keep them for :meth:`pop_rewards`, close the env
        (and release a MuJoCo renderer, see :func:`roboreward.rl.mujoco.release_mujoco_rendering`)."""
        if not self._closed:
            self._closed = True
            try:
                self.delivery.close()
            finally:
                super().close()
                release_mujoco_rendering(self.env)

    def pop_rewards(self, wait: bool = False) -> list[EpisodeReward]:
        """Take the finished episode rewards (oldest first). ``wait=True`` first waits for all pending ones."""
        return self.delivery.take(wait)

    def flush(self) -> None:
        """Wait until every finished episode is scored (each call bounded by ``timeout``)."""
        self.delivery.collect(block=True)

    @property
    def pending(self) -> int:
        """Number of finished episodes whose score has not been delivered yet."""
        return self.delivery.pending

    def _instruction(self) -> str:
        text = self.instruction(self.env) if callable(self.instruction) else self.instruction
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"episode {self.episode}: the instruction must be a non-empty string, got {text!r}")
        return text

    def _with_ready(self, info: dict[str, Any]) -> dict[str, Any]:
        """``info`` with the async results finished since the last step (``reward_model_ready``)."""
        self.delivery.collect(block=False)
        ready = self.delivery.take_announced()
        if ready:
            info["reward_model_ready"] = ready
        return info
