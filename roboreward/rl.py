"""Reward in the loop: a gymnasium wrapper that gives each episode a RoboReward score.

:class:`RewardWrapper` records the frames of every episode (from ``env.render()`` or an observation key), and
when the episode ends (``terminated or truncated``) it scores ``(video, instruction)`` with any
:class:`~roboreward.types.Scorer` (a local reward model, an OpenAI-compatible server, or a spec string for
:func:`roboreward.scoring.load_scorer`). The episodic reward goes into the final step's reward and ``info``.

Delivery (see docs/rl.md):

* ``mode="sync"``: the final ``step()`` blocks while the episode is scored and returns the episodic reward;
  ``info["reward_model"]`` holds the full result (score, probs over 1..5, expected score, progress, ...).
* ``mode="async"``: the final ``step()`` returns at once with reward 0 (plus the env reward under
  ``env_reward="add"``) and ``info["reward_model"] = {"episode": k, "pending": True}``; scoring runs in a
  background thread while the next episode plays. Finished results are delivered, in episode order, through
  :meth:`RewardWrapper.pop_rewards` (a queue), the ``on_reward`` callback (called in the env's thread, from
  ``step``/``reset``/``pop_rewards``/``flush``/``close``) and ``info["reward_model_ready"]`` of the next
  ``step``/``reset``.

In both modes every result also goes to the ``pop_rewards()`` queue and the callback, so the same collection
code works for both and gives the same rewards. A scorer that raises or runs past ``timeout`` seconds, or an
episode without frames, yields ``fallback_reward`` with ``fallback=True`` and the reason in ``error``
(``on_error="raise"`` raises :class:`RewardScoringError` instead); the env loop keeps running.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

try:
    import gymnasium as gym
except ImportError as exc:  # pragma: no cover - gymnasium is in the `rl` extra
    raise ImportError("roboreward.rl needs gymnasium: pip install 'roboreward[rl]'") from exc

from roboreward.types import RewardOutput, Scorer

__all__ = [
    "EpisodeReward",
    "RewardScoringError",
    "RewardWrapper",
    "agreement",
    "episode_reward_value",
    "lighten_mujoco_rendering",
    "setup_headless_mujoco",
]

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


def episode_reward_value(output: RewardOutput, reward_from: RewardFrom = "score", normalize: bool = False) -> float:
    """The scalar reward for a scorer output.

    ``reward_from="score"``: the 1..5 score; ``"expected"``: E[score] under the distribution (the score when
    the scorer gives none). ``normalize`` maps 1..5 linearly onto [0, 1] ((x - 1) / 4).
    """
    if reward_from == "score":
        value = float(output.score)
    elif reward_from == "expected":
        value = float(output.expected) if output.expected is not None else float(output.score)
    else:
        raise ValueError(f"reward_from must be 'score' or 'expected', got {reward_from!r}")
    return (value - 1.0) / 4.0 if normalize else value


class _FrameBuffer:
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


@dataclass
class _Job:
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
    future: Future | None = None
    started: float | None = None
    error: str | None = None  # set when the job is known to fail before scoring (no frames)


class RewardWrapper(gym.Wrapper):
    """Give every episode of ``env`` one RoboReward score, put into the final step's reward.

    Args:
        env: the environment. Wrap it *outside* any ``TimeLimit`` (``gym.make`` adds one) so truncation ends
            the episode here too.
        scorer: a :class:`~roboreward.types.Scorer`, or a spec for :func:`roboreward.scoring.load_scorer`
            (``"tiny"``, a local folder, a Hub id such as ``"teetone/RoboReward-4B"``, ``"openai:<model>@<url>"``).
        instruction: the task instruction, or a callable ``env -> str`` evaluated at every reset; a
            per-episode override can be passed as ``reset(options={"instruction": ...})``.
        frames: ``"render"`` (``env.render()`` after reset and every step; needs ``render_mode="rgb_array"``)
            or the key of an image in a dict observation.
        frame_stride: keep every ``frame_stride``-th frame (the last frame is always kept: the rubric judges
            the final state).
        max_frames: at most this many frames (uniform over the kept ones, first and last included) go to the
            scorer; ``None`` sends all. Memory stays bounded by ``2 * max_frames + 1`` frames.
        fps: steps per second of the env (default ``1 / env.unwrapped.dt``, else ``metadata["render_fps"]``,
            else 10). The frames go to the scorer tagged with their rate in env time
            (:class:`roboreward.scoring.Frames`), so a scorer that samples by time sees the real duration.
        frame_transform: applied to each frame before it is stored (e.g. ``lambda f: f[::-1]`` to flip).
        reward_from: ``"score"`` (1..5 argmax) or ``"expected"`` (E[score] under the distribution).
        normalize: rescale the reward from 1..5 to [0, 1].
        env_reward: ``"replace"`` (non-final steps give 0, the env reward is kept in ``info["env_reward"]``)
            or ``"add"`` (env reward + episodic reward at the final step).
        mode: ``"sync"`` or ``"async"`` (see the module docstring for how async rewards are delivered).
        timeout: seconds one scoring call may run before the fallback is used (``None``: no limit). Python
            cannot stop a thread: a timed-out call finishes in the background and its result is dropped.
        on_error: ``"fallback"`` (warn, use ``fallback_reward``, record the error in ``info``) or ``"raise"``.
        fallback_reward: the reward for an episode that could not be scored (already in reward units).
        max_queue: the :meth:`pop_rewards` queue keeps at most this many results (oldest dropped, with one
            warning) so a loop that only reads ``info`` does not grow memory; ``None``: unbounded.
        keep_video: keep the frames sent to the scorer in :attr:`EpisodeReward.video` (to save or inspect).
        on_reward: called with each :class:`EpisodeReward`, in episode order, in the env's thread.
        scorer_kwargs: keyword arguments for ``load_scorer`` when ``scorer`` is a string.
    """

    def __init__(
        self,
        env: gym.Env,
        scorer: Scorer | str,
        instruction: str | Callable[[gym.Env], str],
        *,
        frames: str = "render",
        frame_stride: int = 1,
        max_frames: int | None = 32,
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
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        if reward_from not in ("score", "expected"):
            raise ValueError(f"reward_from must be 'score' or 'expected', got {reward_from!r}")
        if env_reward not in ("replace", "add"):
            raise ValueError(f"env_reward must be 'replace' or 'add', got {env_reward!r}")
        if mode not in ("sync", "async"):
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
        if on_error not in ("fallback", "raise"):
            raise ValueError(f"on_error must be 'fallback' or 'raise', got {on_error!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout}")
        if frames == "render" and env.render_mode != "rgb_array":
            raise ValueError(
                f"RewardWrapper(frames='render') needs an env made with render_mode='rgb_array'; this env has "
                f"render_mode={env.render_mode!r}. Pass render_mode='rgb_array' to gym.make, or frames=<obs key>."
            )
        if frames != "render" and not isinstance(env.observation_space, gym.spaces.Dict):
            raise ValueError(
                f"RewardWrapper(frames={frames!r}) reads an image from a dict observation, but the observation "
                f"space is {type(env.observation_space).__name__}; use frames='render'"
            )
        if frames != "render" and frames not in env.observation_space.spaces:
            raise ValueError(f"observation has no key {frames!r}; keys: {sorted(env.observation_space.spaces)}")
        if isinstance(scorer, str):
            from roboreward.scoring import load_scorer

            scorer = load_scorer(scorer, **(scorer_kwargs or {}))
        if not callable(getattr(scorer, "score", None)):
            raise TypeError(f"scorer must follow roboreward.types.Scorer (a .score method), got {type(scorer)}")
        self.scorer: Scorer = scorer
        self.instruction = instruction
        self.frame_source = frames
        self.frame_stride = frame_stride
        self.max_frames = max_frames
        self.frame_transform = frame_transform
        self.fps = float(fps) if fps is not None else _env_fps(env)
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        self.reward_from: RewardFrom = reward_from
        self.normalize = normalize
        self.env_reward = env_reward
        self.mode = mode
        self.timeout = timeout
        self.on_error = on_error
        self.fallback_reward = float(fallback_reward)
        self.on_reward = on_reward
        self.keep_video = keep_video

        self.episode = -1  # index of the current episode (0 after the first reset)
        self._step = 0
        self._buffer: _FrameBuffer | None = None
        self._current_instruction = ""
        self._pending: deque[_Job] = deque()
        if max_queue is not None and max_queue < 1:
            raise ValueError(f"max_queue must be >= 1 or None, got {max_queue}")
        self._ready: deque[EpisodeReward] = deque(maxlen=max_queue)
        self._dropped_warned = False
        self._announce: list[dict[str, Any]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options) if options else None
        override = options.pop("instruction", None) if options else None
        obs, info = self.env.reset(seed=seed, options=options or None)
        self.episode += 1
        self._step = 0
        self._current_instruction = override if override is not None else self._instruction()
        self._buffer = _FrameBuffer(self.frame_stride, self.max_frames)
        self._record(obs)
        self._collect(block=False)
        self._attach_ready(info)
        return obs, info

    def step(self, action):
        if self._buffer is None:
            raise RuntimeError("call reset() before step()")
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        self._step += 1
        self._record(obs, last=terminated or truncated)
        info = dict(info)
        info["env_reward"] = float(env_reward)
        reward = float(env_reward) if self.env_reward == "add" else 0.0
        if terminated or truncated:
            job = self._make_job(info)
            self._buffer = None
            if self.mode == "sync":
                result = self._run_sync(job)
                reward += result.reward
                info["reward_model"] = result.to_dict()
            else:
                self._submit(job)
                info["reward_model"] = {"episode": job.episode, "pending": True}
        self._collect(block=False)
        self._attach_ready(info)
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Wait for pending scores (bounded by ``timeout``), keep them for :meth:`pop_rewards`, close the env."""
        if not self._closed:
            self._closed = True
            try:
                self.flush()
            finally:
                if self._executor is not None:
                    self._executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = None
                super().close()

    # ------------------------------------------------------------------ reward delivery

    def pop_rewards(self, wait: bool = False) -> list[EpisodeReward]:
        """Take the finished episode rewards (oldest first). ``wait=True`` first waits for all pending ones."""
        self._collect(block=wait)
        out = list(self._ready)
        self._ready.clear()
        return out

    def flush(self) -> None:
        """Wait until every finished episode is scored (each call bounded by ``timeout``)."""
        self._collect(block=True)

    @property
    def pending(self) -> int:
        """Number of finished episodes whose score has not been delivered yet."""
        return len(self._pending)

    # ------------------------------------------------------------------ internals

    def _instruction(self) -> str:
        text = self.instruction(self.env) if callable(self.instruction) else self.instruction
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"episode {self.episode}: the instruction must be a non-empty string, got {text!r}")
        return text

    def _record(self, obs: Any, last: bool = False) -> None:
        """Store this step's frame if the buffer keeps it (``render()`` is only called for kept frames)."""
        assert self._buffer is not None
        if not self._buffer.wants(self._step, last):
            return
        source = "render()" if self.frame_source == "render" else f"observation[{self.frame_source!r}]"
        frame = self.env.render() if self.frame_source == "render" else obs[self.frame_source]
        if frame is None:
            self._buffer.add(self._step, None)
            return
        if self.frame_transform is not None:
            frame = self.frame_transform(frame)
        arr = np.asarray(frame)
        if arr.ndim == 3 and arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise ValueError(
                f"episode {self.episode} step {self._step}: {source} gave a frame of shape {arr.shape}; "
                "expected (H, W, 3)"
            )
        if arr.dtype != np.uint8:
            raise ValueError(
                f"episode {self.episode} step {self._step}: {source} gave a {arr.dtype} frame; expected uint8 "
                "(convert it with frame_transform)"
            )
        self._buffer.add(self._step, np.array(arr, copy=True, order="C"))

    def _make_job(self, info: dict[str, Any]) -> _Job:
        assert self._buffer is not None
        video, steps, kept = self._buffer.video()
        fps = self.fps
        if video is not None and len(steps) > 1:
            fps = self.fps * (len(steps) - 1) / max(steps[-1] - steps[0], 1)
            video = _tag_fps(video, fps)
        job = _Job(
            episode=self.episode,
            instruction=self._current_instruction,
            video=video,
            fps=fps,
            frame_steps=steps,
            recorded=kept,
            missing=self._buffer.missing,
            calls=self._buffer.calls,
            length=self._step,
            final_info=dict(info),
        )
        if video is None:
            where = "render()" if self.frame_source == "render" else f"observation[{self.frame_source!r}]"
            job.error = (
                f"episode {job.episode}: no frames recorded ({where} returned None on "
                f"{job.missing} of {job.calls} calls)"
            )
        return job

    def _score(self, job: _Job) -> RewardOutput:
        job.started = time.monotonic()
        return self.scorer.score(job.video, job.instruction)

    def _executor_(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roboreward-score")
        return self._executor

    def _submit(self, job: _Job) -> None:
        if job.error is None:
            job.future = self._executor_().submit(self._score, job)
        self._pending.append(job)

    def _run_sync(self, job: _Job) -> EpisodeReward:
        if job.error is None and self.timeout is None:
            start = time.monotonic()
            try:
                output: RewardOutput | BaseException = self.scorer.score(job.video, job.instruction)
            except Exception as exc:  # noqa: BLE001 - any scorer failure becomes a documented fallback
                output = exc
            result = self._finish(job, output, time.monotonic() - start)
            self._deliver(result, announce=False)
            return result
        self._submit(job)
        self._collect(block=True, upto=job.episode)
        for i, r in enumerate(self._ready):
            if r.episode == job.episode:
                return self._ready[i]
        raise AssertionError(f"episode {job.episode} was not delivered")  # pragma: no cover

    def _collect(self, block: bool, upto: int | None = None) -> None:
        """Deliver finished jobs in episode order; with ``block``, wait for them (each bounded by timeout)."""
        while self._pending:
            job = self._pending[0]
            if upto is not None and job.episode > upto:
                return
            if job.future is None:
                output: RewardOutput | BaseException = RewardScoringError(job.error or "not scored")
            elif job.future.done():
                output = job.future.exception() or job.future.result()
            elif (
                self.timeout is not None
                and job.started is not None
                and (time.monotonic() - job.started >= self.timeout)
            ):
                output = TimeoutError(f"scorer {self._scorer_name()} ran past timeout={self.timeout}s")
                self._abandon_executor()
            elif block:
                try:
                    remaining = None
                    if self.timeout is not None:
                        started = job.started if job.started is not None else time.monotonic()
                        remaining = max(0.0, self.timeout - (time.monotonic() - started)) + 0.01
                    job.future.result(timeout=remaining)
                except Exception:  # noqa: BLE001 - result or failure is read again on the next loop turn
                    pass
                continue
            else:
                return
            self._pending.popleft()
            seconds = 0.0 if job.started is None else time.monotonic() - job.started
            result = self._finish(job, output, seconds)
            self._deliver(result, announce=self.mode == "async")

    def _abandon_executor(self) -> None:
        """A call hung: give its worker up and resubmit the jobs queued behind it to a fresh worker."""
        old, self._executor = self._executor, None
        requeue = list(self._pending)[1:]
        for job in requeue:
            if job.future is not None and job.future.cancel():
                job.future = self._executor_().submit(self._score, job)
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    def _finish(self, job: _Job, output: RewardOutput | BaseException, seconds: float) -> EpisodeReward:
        common = dict(
            episode=job.episode,
            instruction=job.instruction,
            length=job.length,
            num_frames=0 if job.video is None else len(job.video),
            recorded_frames=job.recorded,
            missing_frames=job.missing,
            frame_steps=job.frame_steps,
            fps=round(job.fps, 4),
            scorer=self._scorer_name(),
            seconds=round(seconds, 4),
            final_info=job.final_info,
            video=np.asarray(job.video) if self.keep_video and job.video is not None else None,
        )
        if isinstance(output, RewardOutput):
            try:
                value = episode_reward_value(output, self.reward_from, self.normalize)
                if not math.isfinite(value):
                    raise ValueError(f"non-finite reward {value}")
            except Exception as exc:  # noqa: BLE001
                output = exc
            else:
                return EpisodeReward(
                    reward=value,
                    score=int(output.score),
                    probs=None if output.probs is None else [float(p) for p in output.probs],
                    expected=None if output.expected is None else float(output.expected),
                    progress=float(output.progress),
                    raw_text=output.raw_text,
                    parsed=bool(output.parsed),
                    **common,
                )
        if not isinstance(output, BaseException):
            output = TypeError(f"scorer returned {type(output).__name__}, not RewardOutput")
        error = str(output) if isinstance(output, RewardScoringError) else f"{type(output).__name__}: {output}"
        if not error.startswith(f"episode {job.episode}"):
            error = f"episode {job.episode}: {error}"
        if self.on_error == "raise":
            raise RewardScoringError(error) from output
        warnings.warn(f"RewardWrapper: {error}; using fallback reward {self.fallback_reward}", stacklevel=3)
        return EpisodeReward(reward=self.fallback_reward, fallback=True, error=error, **common)

    def _deliver(self, result: EpisodeReward, announce: bool) -> None:
        if self._ready.maxlen is not None and len(self._ready) == self._ready.maxlen and not self._dropped_warned:
            self._dropped_warned = True
            warnings.warn(
                f"RewardWrapper: pop_rewards() queue is full ({self._ready.maxlen}); dropping the oldest results "
                "(call pop_rewards() or raise max_queue)",
                stacklevel=3,
            )
        self._ready.append(result)
        if announce:
            self._announce.append(result.to_dict())
        if self.on_reward is not None:
            self.on_reward(result)

    def _attach_ready(self, info: dict[str, Any]) -> None:
        if self._announce:
            info["reward_model_ready"] = self._announce
            self._announce = []

    def _scorer_name(self) -> str:
        return str(getattr(self.scorer, "name", type(self.scorer).__name__))


def setup_headless_mujoco(backend: str = "osmesa") -> str:
    """Prepare headless MuJoCo rendering (Meta-World) in a process that also runs a torch reward model.

    Sets ``MUJOCO_GL`` / ``PYOPENGL_PLATFORM`` to ``backend`` unless already set, and returns the backend in
    effect. With OSMesa, Debian's libOSMesa loads the system libLLVM, whose symbols clash with the LLVM
    bundled in triton (imported by torch, e.g. via torchvision/transformers video processing): importing
    triton *after* mujoco crashes the process (SIGSEGV). So this imports triton first when it is installed.
    Call it before importing mujoco / metaworld.
    """
    os.environ.setdefault("MUJOCO_GL", backend)
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    gl = os.environ["MUJOCO_GL"]
    if gl == "osmesa" and "triton" not in sys.modules:
        if "mujoco" in sys.modules:
            warnings.warn(
                "mujoco was imported before setup_headless_mujoco(): with MUJOCO_GL=osmesa a later import of "
                "triton (torch) may crash the process; call setup_headless_mujoco() before importing mujoco",
                stacklevel=2,
            )
        else:
            # CPU-only torch builds ship no triton: then nothing can clash
            with contextlib.suppress(ImportError):
                import triton  # noqa: F401
    return gl


def lighten_mujoco_rendering(env: gym.Env, shadowsize: int = 1024, offsamples: int = 0) -> None:
    """Cheaper offscreen renders of a MuJoCo env under software GL: a smaller shadow map, no multisampling.

    Call before the first ``render()``. Meta-World asks for a 4096 px shadow map and 4x multisampling; on
    OSMesa that dominates the cost of a frame (see docs/rl.md for timings), with no visible change at the
    sizes a reward model sees.
    """
    model = getattr(env.unwrapped, "model", None)
    if model is None or not hasattr(model, "vis"):
        raise TypeError(f"{type(env.unwrapped).__name__} is not a MuJoCo env (no .model.vis)")
    model.vis.quality.shadowsize = int(shadowsize)
    model.vis.quality.offsamples = int(offsamples)


def _env_fps(env: gym.Env) -> float:
    """Steps per second of an env: 1 / dt (MuJoCo envs), else metadata["render_fps"], else 10."""
    dt = getattr(env.unwrapped, "dt", None)
    if isinstance(dt, int | float) and dt > 0:
        return 1.0 / float(dt)
    fps = (env.metadata or {}).get("render_fps")
    return float(fps) if isinstance(fps, int | float) and fps > 0 else 10.0


def _tag_fps(video: np.ndarray, fps: float) -> np.ndarray:
    """Frames that carry their rate (roboreward.scoring.Frames) when that module is importable."""
    try:
        from roboreward.scoring import Frames
    except ImportError:  # pragma: no cover - scoring is part of the package; a plain array still scores
        return video
    return Frames(video, fps=fps)


def agreement(success: Sequence[bool | float], rewards: Sequence[float], threshold: float = 5.0) -> dict[str, float]:
    """How well episodic rewards track a binary success flag.

    ``accuracy``: fraction of episodes where ``reward >= threshold`` equals success; ``point_biserial``: the
    Pearson correlation between the 0/1 success flag and the reward (NaN when either is constant);
    ``mean_reward_success`` / ``mean_reward_failure``: mean reward per group (NaN for an empty group).
    """
    s = np.asarray(success, dtype=float)
    r = np.asarray(rewards, dtype=float)
    if s.shape != r.shape or s.ndim != 1:
        raise ValueError(f"success and rewards must be 1-D of one length, got {s.shape} and {r.shape}")
    if not len(s):
        raise ValueError("agreement() needs at least one episode")
    ok = s > 0.5
    pb = float("nan")
    if s.std() > 0 and r.std() > 0:
        pb = float(np.corrcoef(ok.astype(float), r)[0, 1])
    return {
        "n": float(len(s)),
        "success_rate": float(ok.mean()),
        "accuracy": float(((r >= threshold) == ok).mean()),
        "point_biserial": pb,
        "mean_reward_success": float(r[ok].mean()) if ok.any() else float("nan"),
        "mean_reward_failure": float(r[~ok].mean()) if (~ok).any() else float("nan"),
    }
