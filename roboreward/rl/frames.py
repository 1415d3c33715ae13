"""The frames of an episode: read from ``env.render()`` or an observation key, checked, kept in bounded memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from roboreward.rl.rewards import EpisodeJob

#: Frames sent to the scorer at most by default. This caps what the wrapper *sends*, not what the model sees:
#: the scorer samples by time from these with its own :class:`roboreward.sampling.FrameSampling`.
DEFAULT_SENT_FRAMES = 32


class FrameBuffer:
    """Keeps every ``stride``-th frame of an episode and always the last one, in bounded memory.

    With ``max_frames``, the buffer halves itself (keeps every other frame, doubles the stride) whenever it
    reaches ``2 * max_frames``, so an episode of any length holds at most ``2 * max_frames + 1`` frames.
    """

    def __init__(self, stride: int, max_frames: int | None) -> None:
        self.stride = stride
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []
        self.steps: list[int] = []
        self.last: tuple[int, np.ndarray] | None = None
        self.missing = 0
        self.calls = 0

    def wants(self, step: int, last: bool) -> bool:
        """Whether the frame of ``step`` would be kept (so renders are only made for kept frames)."""
        return last or step % self.stride == 0

    def add(self, step: int, frame: np.ndarray | None) -> None:
        """Keep ``frame`` (``None``: the source gave no frame; counted as missing)."""
        self.calls += 1
        if frame is None:
            self.missing += 1
            return
        self.last = (step, frame)
        if step % self.stride:
            return
        self.frames.append(frame)
        self.steps.append(step)
        if self.max_frames is not None and len(self.frames) >= 2 * self.max_frames:
            self.frames, self.steps = self.frames[::2], self.steps[::2]
            self.stride *= 2

    def video(self) -> tuple[np.ndarray | None, list[int], int]:
        """(frames (T, H, W, 3) to score or None, their step indices, number of frames kept)."""
        frames, steps = list(self.frames), list(self.steps)
        if self.last is not None and (not steps or steps[-1] != self.last[0]):
            frames.append(self.last[1])
            steps.append(self.last[0])
        kept = len(frames)
        if not frames:
            return None, [], 0
        if self.max_frames is not None and kept > self.max_frames:
            pick = np.unique(np.linspace(0, kept - 1, self.max_frames).round().astype(int))
            frames, steps = [frames[i] for i in pick], [steps[i] for i in pick]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise ValueError(f"frames of one episode must share one shape, got {sorted(shapes)}")
        return np.stack(frames), steps, kept


class FrameRecorder:
    """Records the frames of ``env``'s episodes from ``source`` (``"render"`` or a dict-observation key).

    Checks its arguments against the env at construction (render mode, observation keys, stride, frame cap,
    fps), then per episode: :meth:`start`, :meth:`record` after reset and every step, :meth:`finish`.
    """

    def __init__(
        self,
        env: gym.Env,
        source: str = "render",
        *,
        stride: int = 1,
        max_frames: int | None = DEFAULT_SENT_FRAMES,
        fps: float | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {stride}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        check_frame_source(env, source)
        self.env = env
        self.source = source
        self.stride = stride
        self.max_frames = max_frames
        self.transform = transform
        self.fps = float(fps) if fps is not None else env_fps(env)
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        self.where = "render()" if source == "render" else f"observation[{source!r}]"
        self.buffer: FrameBuffer | None = None

    def start(self) -> None:
        """Begin a new episode (an unfinished one is dropped)."""
        self.buffer = FrameBuffer(self.stride, self.max_frames)

    def record(self, obs: Any, episode: int, step: int, last: bool = False) -> None:
        """Store this step's frame if the buffer keeps it (``render()`` is only called for kept frames)."""
        if self.buffer is None:
            raise RuntimeError("call reset() before step()")
        if not self.buffer.wants(step, last):
            return
        frame = self.env.render() if self.source == "render" else obs[self.source]
        if frame is None:
            self.buffer.add(step, None)
            return
        if self.transform is not None:
            frame = self.transform(frame)
        arr = np.asarray(frame)
        if arr.ndim == 3 and arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise ValueError(
                f"episode {episode} step {step}: {self.where} gave a frame of shape {arr.shape}; expected (H, W, 3)"
            )
        if arr.dtype != np.uint8:
            raise ValueError(
                f"episode {episode} step {step}: {self.where} gave a {arr.dtype} frame; expected uint8 "
                "(convert it with frame_transform)"
            )
        self.buffer.add(step, np.array(arr, copy=True, order="C"))

    def finish(self, episode: int, instruction: str, length: int, info: dict[str, Any]) -> EpisodeJob:
        """The episode's job: the frames to send, tagged with their rate in env time; ends the episode."""
        if self.buffer is None:
            raise RuntimeError("call reset() before step()")
        buffer, self.buffer = self.buffer, None
        video, steps, kept = buffer.video()
        fps = self.fps
        if video is not None and len(steps) > 1:
            fps = self.fps * (len(steps) - 1) / max(steps[-1] - steps[0], 1)
            video = tag_fps(video, fps)
        job = EpisodeJob(
            episode=episode,
            instruction=instruction,
            video=video,
            fps=fps,
            frame_steps=steps,
            recorded=kept,
            missing=buffer.missing,
            calls=buffer.calls,
            length=length,
            final_info=dict(info),
        )
        if video is None:
            job.error = (
                f"episode {episode}: no frames recorded ({self.where} returned None on "
                f"{buffer.missing} of {buffer.calls} calls)"
            )
        return job


def check_frame_source(env: gym.Env, source: str) -> None:
    """Refuse a frame source the env cannot give, saying what to pass instead."""
    if source == "render":
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"RewardWrapper(frames='render') needs an env made with render_mode='rgb_array'; this env has "
                f"render_mode={env.render_mode!r}. Pass render_mode='rgb_array' to gym.make, or frames=<obs key>."
            )
        return
    if not isinstance(env.observation_space, gym.spaces.Dict):
        raise ValueError(
            f"RewardWrapper(frames={source!r}) reads an image from a dict observation, but the observation "
            f"space is {type(env.observation_space).__name__}; use frames='render'"
        )
    if source not in env.observation_space.spaces:
        raise ValueError(f"observation has no key {source!r}; keys: {sorted(env.observation_space.spaces)}")


def env_fps(env: gym.Env) -> float:
    """Steps per second of an env: 1 / dt (MuJoCo envs), else metadata["render_fps"], else 10."""
    dt = getattr(env.unwrapped, "dt", None)
    if isinstance(dt, int | float) and dt > 0:
        return 1.0 / float(dt)
    fps = (env.metadata or {}).get("render_fps")
    return float(fps) if isinstance(fps, int | float) and fps > 0 else 10.0


def tag_fps(video: np.ndarray, fps: float) -> np.ndarray:
    """Frames that carry their rate (:class:`roboreward.scoring.Frames`), so a scorer samples by env time."""
    from roboreward.scoring import Frames

    return Frames(video, fps=fps)
