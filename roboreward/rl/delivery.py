"""Scoring finished episodes and delivering their rewards, in episode order, synchronously or in the background.

:class:`RewardDelivery` owns the scorer, one worker thread (async mode, or sync with a ``timeout``), the
per-call timeout (a hung call's worker is abandoned and the queued episodes move to a fresh one), the
fallback on failure, and the three delivery channels: the :meth:`RewardDelivery.take` queue, the
``on_reward`` callback (always called in the env's thread) and the announcements for ``info``.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from roboreward.rl.rewards import EpisodeJob, EpisodeReward, RewardFrom, RewardScoringError, episode_reward_value
from roboreward.types import RewardOutput, Scorer


@dataclass(frozen=True)
class DeliverySettings:
    """How episodes are scored and their rewards delivered (see :class:`roboreward.rl.RewardWrapper`)."""

    reward_from: RewardFrom = "score"
    normalize: bool = False
    env_reward: Literal["replace", "add"] = "replace"
    mode: Literal["sync", "async"] = "sync"
    timeout: float | None = None
    on_error: Literal["fallback", "raise"] = "fallback"
    fallback_reward: float = 0.0
    keep_video: bool = False
    max_queue: int | None = 10_000

    def __post_init__(self) -> None:
        choices = {
            "reward_from": ("score", "expected"),
            "env_reward": ("replace", "add"),
            "mode": ("sync", "async"),
            "on_error": ("fallback", "raise"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be {' or '.join(map(repr, allowed))}, got {getattr(self, name)!r}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {self.timeout}")
        if self.max_queue is not None and self.max_queue < 1:
            raise ValueError(f"max_queue must be >= 1 or None, got {self.max_queue}")
        object.__setattr__(self, "fallback_reward", float(self.fallback_reward))


def resolve_scorer(scorer: Scorer | str, scorer_kwargs: dict[str, Any] | None = None) -> Scorer:
    """``scorer`` itself, or the scorer a spec string names (:func:`roboreward.scoring.load_scorer`)."""
    if isinstance(scorer, str):
        from roboreward.scoring import load_scorer

        scorer = load_scorer(scorer, **(scorer_kwargs or {}))
    if not callable(getattr(scorer, "score", None)):
        raise TypeError(f"scorer must follow roboreward.types.Scorer (a .score method), got {type(scorer)}")
    return scorer


@dataclass
class _Pending:
    job: EpisodeJob
    future: Future | None = None
    started: float | None = None


class RewardDelivery:
    """Scores :class:`EpisodeJob` s with ``scorer`` and delivers each :class:`EpisodeReward` once per channel."""

    def __init__(
        self,
        scorer: Scorer,
        settings: DeliverySettings,
        on_reward: Callable[[EpisodeReward], None] | None = None,
    ) -> None:
        self.scorer = scorer
        self.settings = settings
        self.on_reward = on_reward
        self.name = str(getattr(scorer, "name", type(scorer).__name__))
        self._pending: deque[_Pending] = deque()
        self._ready: deque[EpisodeReward] = deque(maxlen=settings.max_queue)
        self._dropped_warned = False
        self._announce: list[dict[str, Any]] = []
        self._executor: ThreadPoolExecutor | None = None

    @property
    def pending(self) -> int:
        """Number of finished episodes whose score has not been delivered yet."""
        return len(self._pending)

    def submit(self, job: EpisodeJob) -> None:
        """Queue ``job``; it is scored in the background (async mode)."""
        item = _Pending(job)
        if job.error is None:
            item.future = self._worker().submit(self._score, item)
        self._pending.append(item)

    def score_now(self, job: EpisodeJob) -> EpisodeReward:
        """Score ``job`` before returning (sync mode; with a timeout, on the worker to bound the wait)."""
        if job.error is None and self.settings.timeout is None:
            start = time.monotonic()
            try:
                output: RewardOutput | BaseException = self.scorer.score(job.video, job.instruction)
            except Exception as exc:  # noqa: BLE001 - any scorer failure becomes a documented fallback
                output = exc
            result = episode_result(job, output, time.monotonic() - start, self.settings, self.name)
            self._deliver(result, announce=False)
            return result
        self.submit(job)
        self.collect(block=True, upto=job.episode)
        return next(r for r in reversed(self._ready) if r.episode == job.episode)

    def collect(self, block: bool, upto: int | None = None) -> None:
        """Deliver finished jobs in episode order; with ``block``, wait for them (each bounded by timeout)."""
        timeout = self.settings.timeout
        while self._pending:
            item = self._pending[0]
            if upto is not None and item.job.episode > upto:
                return
            if item.future is None:
                output: RewardOutput | BaseException = RewardScoringError(item.job.error or "not scored")
            elif item.future.done():
                output = item.future.exception() or item.future.result()
            elif timeout is not None and item.started is not None and time.monotonic() - item.started >= timeout:
                output = TimeoutError(f"scorer {self.name} ran past timeout={timeout}s")
                self._abandon_worker()
            elif block:
                remaining = None
                if timeout is not None:
                    started = item.started if item.started is not None else time.monotonic()
                    remaining = max(0.0, timeout - (time.monotonic() - started)) + 0.01
                # the result or the failure is read on the next loop turn
                with contextlib.suppress(Exception):
                    item.future.result(timeout=remaining)
                continue
            else:
                return
            self._pending.popleft()
            seconds = 0.0 if item.started is None else time.monotonic() - item.started
            result = episode_result(item.job, output, seconds, self.settings, self.name)
            self._deliver(result, announce=self.settings.mode == "async")

    def take(self, wait: bool = False) -> list[EpisodeReward]:
        """The finished episode rewards (oldest first), removed from the queue; ``wait`` for pending ones first."""
        self.collect(block=wait)
        out = list(self._ready)
        self._ready.clear()
        return out

    def take_announced(self) -> list[dict[str, Any]]:
        """The async results finished since the last call (for ``info["reward_model_ready"]``)."""
        out, self._announce = self._announce, []
        return out

    def close(self) -> None:
        """Wait for pending scores (bounded by the timeout), then stop the worker."""
        try:
            self.collect(block=True)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

    # ------------------------------------------------------------------ internals

    def _score(self, item: _Pending) -> RewardOutput:
        item.started = time.monotonic()
        return self.scorer.score(item.job.video, item.job.instruction)

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roboreward-score")
        return self._executor

    def _abandon_worker(self) -> None:
        """A call hung: give its worker up and resubmit the jobs queued behind it to a fresh worker."""
        old, self._executor = self._executor, None
        for item in list(self._pending)[1:]:
            if item.future is not None and item.future.cancel():
                item.future = self._worker().submit(self._score, item)
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    def _deliver(self, result: EpisodeReward, announce: bool) -> None:
        if self._ready.maxlen is not None and len(self._ready) == self._ready.maxlen and not self._dropped_warned:
            self._dropped_warned = True
            warnings.warn(
                f"RewardWrapper: pop_rewards() queue is full ({self._ready.maxlen}); dropping the oldest results "
                "(call pop_rewards() or raise max_queue)",
                stacklevel=4,
            )
        self._ready.append(result)
        if announce:
            self._announce.append(result.to_dict())
        if self.on_reward is not None:
            self.on_reward(result)


def episode_result(
    job: EpisodeJob, output: RewardOutput | BaseException, seconds: float, settings: DeliverySettings, scorer: str
) -> EpisodeReward:
    """The :class:`EpisodeReward` of ``job`` for the scorer's ``output`` (or the fallback for an exception);
    raises :class:`RewardScoringError` instead of falling back under ``on_error="raise"``."""
    s = settings
    common: dict[str, Any] = dict(
        episode=job.episode,
        instruction=job.instruction,
        length=job.length,
        num_frames=0 if job.video is None else len(job.video),
        recorded_frames=job.recorded,
        missing_frames=job.missing,
        frame_steps=job.frame_steps,
        fps=round(job.fps, 4),
        scorer=scorer,
        seconds=round(seconds, 4),
        final_info=job.final_info,
        video=np.asarray(job.video) if s.keep_video and job.video is not None else None,
    )
    if isinstance(output, RewardOutput):
        try:
            value = episode_reward_value(output, s.reward_from, s.normalize)
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
    if s.on_error == "raise":
        raise RewardScoringError(error) from output
    warnings.warn(f"RewardWrapper: {error}; using fallback reward {s.fallback_reward}", stacklevel=4)
    return EpisodeReward(reward=s.fallback_reward, fallback=True, error=error, **common)
