"""RewardWrapper: episodic reward at the final step, async == sync, frame handling, failures, Meta-World."""

from __future__ import annotations

import threading
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest

from roboreward.rl import EpisodeReward, RewardScoringError, RewardWrapper, agreement, episode_reward_value
from roboreward.types import RewardOutput


class SlideEnv(gym.Env):
    """A square slides right by ``action`` (0 or 1) per step; success = it reached the right edge."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = "rgb_array", width: int = 10, none_frames: bool = False):
        self.render_mode = render_mode
        self.width = width
        self.none_frames = none_frames
        self.observation_space = gym.spaces.Box(0, width, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return np.array([self.pos], np.float32), {}

    def step(self, action):
        self.pos = min(self.width, self.pos + int(action))
        done = self.pos >= self.width
        return np.array([self.pos], np.float32), 0.25, done, False, {"success": float(done)}

    def render(self):
        if self.render_mode != "rgb_array" or self.none_frames:
            return None
        return self.image()

    def image(self) -> np.ndarray:
        img = np.zeros((32, 48, 3), np.uint8)
        x = int(40 * self.pos / self.width)
        img[12:20, x : x + 8] = 255
        return img


class DictObsEnv(SlideEnv):
    """Same task, the image comes in the observation under "pixels"."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(0, 10, (1,), np.float32), "pixels": gym.spaces.Box(0, 255, (32, 48, 3), np.uint8)}
        )

    def _obs(self):
        return {"state": np.array([self.pos], np.float32), "pixels": self.image()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        _, r, term, trunc, info = super().step(action)
        return self._obs(), r, term, trunc, info


class FakeScorer:
    """Deterministic: the score grows with how far right the square is in the LAST frame."""

    name = "fake"

    def __init__(self, delay: float = 0.0, fail_on: set[int] | None = None, hang_on: set[int] | None = None):
        self.delay = delay
        self.fail_on = fail_on or set()
        self.hang_on = hang_on or set()
        self.calls: list[tuple[np.ndarray, str]] = []
        self.release = threading.Event()

    def score(self, video, instruction):
        n = len(self.calls)
        self.calls.append((np.asarray(video), instruction))
        if self.delay:
            time.sleep(self.delay)
        if n in self.fail_on:
            raise RuntimeError("server said 500")
        if n in self.hang_on:
            self.release.wait(30)
        last = np.asarray(video)[-1]
        cols = np.nonzero(last.max(axis=(0, 2)))[0]
        x = cols.mean() / last.shape[1] if len(cols) else 0.0
        logits = -((np.arange(1, 6) - (1 + 4 * x)) ** 2)
        probs = np.exp(logits) / np.exp(logits).sum()
        return RewardOutput(
            score=int(np.argmax(probs) + 1), probs=probs.tolist(), expected=float((np.arange(1, 6) * probs).sum())
        )

    def score_batch(self, videos, instructions):
        return [self.score(v, t) for v, t in zip(videos, instructions, strict=True)]


def run_episodes(env, policies, seed=0):
    """Roll out one episode per policy (a per-step action list); return per-episode (rewards, infos)."""
    out = []
    for i, actions in enumerate(policies):
        env.reset(seed=seed + i)
        rewards, infos = [], []
        for a in actions:
            _, r, term, trunc, info = env.step(a)
            rewards.append(r)
            infos.append(info)
            if term or trunc:
                break
        out.append((rewards, infos))
    return out


def slide(width=10, max_steps=14):
    return gym.wrappers.TimeLimit(SlideEnv(width=width), max_steps)


EPISODES = [[1] * 10, [1, 0] * 7, [0] * 14, [1, 1, 0] * 5]


def test_reward_only_at_final_step_with_distribution():
    env = RewardWrapper(slide(), FakeScorer(), "slide the square to the right edge")
    results = run_episodes(env, EPISODES)
    for rewards, infos in results:
        assert all(r == 0.0 for r in rewards[:-1])
        assert all("reward_model" not in i for i in infos[:-1])
        assert all(i["env_reward"] == 0.25 for i in infos)
        rm = infos[-1]["reward_model"]
        assert rewards[-1] == rm["reward"] == rm["score"]
        assert len(rm["probs"]) == 5 and abs(sum(rm["probs"]) - 1) < 1e-6
        assert 1 <= rm["expected"] <= 5 and 0 <= rm["progress"] <= 1
        assert rm["fallback"] is False and rm["error"] is None and rm["scorer"] == "fake"
    # the square reaches the edge only in episode 0: highest score; episode 2 never moves: score 1
    scores = [infos[-1]["reward_model"]["score"] for _, infos in results]
    assert scores[0] == 5 and scores[2] == 1 and scores[1] < 5
    assert [len(r) for r, _ in results] == [10, 14, 14, 14]


def test_async_and_sync_give_the_same_rewards():
    sync = RewardWrapper(slide(), FakeScorer(), "slide right", mode="sync", reward_from="expected", normalize=True)
    sync_results = run_episodes(sync, EPISODES)
    got_sync = sync.pop_rewards(wait=True)

    calls: list[EpisodeReward] = []
    scorer = FakeScorer(delay=0.05)
    asy = RewardWrapper(
        slide(), scorer, "slide right", mode="async", reward_from="expected", normalize=True, on_reward=calls.append
    )
    async_results = run_episodes(asy, EPISODES)
    # async: the final step carries no episodic reward, only a pending marker
    for rewards, infos in async_results:
        assert all(r == 0.0 for r in rewards)
        assert infos[-1]["reward_model"]["pending"] is True
    announced = [d for _, infos in async_results for i in infos for d in i.get("reward_model_ready", [])]
    got_async = asy.pop_rewards(wait=True)
    assert asy.pending == 0 and asy.pop_rewards() == []

    assert [r.episode for r in got_sync] == [r.episode for r in got_async] == [0, 1, 2, 3]
    assert [r.reward for r in got_sync] == [r.reward for r in got_async]
    assert [r.probs for r in got_sync] == [r.probs for r in got_async]
    assert [infos[-1]["reward_model"]["reward"] for _, infos in sync_results] == [r.reward for r in got_sync]
    assert [c.episode for c in calls] == [0, 1, 2, 3]
    # what was announced in info of later steps is a prefix of the results, in order, each once
    assert [d["episode"] for d in announced] == list(range(len(announced)))
    assert all(0.0 <= r.reward <= 1.0 for r in got_async)
    assert got_async[0].final_info["success"] == 1.0 and got_async[2].final_info["success"] == 0.0


def test_frame_stride_and_max_frames_keep_the_last_frame():
    scorer = FakeScorer()
    env = RewardWrapper(slide(width=40, max_steps=40), scorer, "slide", frame_stride=3, max_frames=None)
    ((rewards, infos),) = run_episodes(env, [[1] * 40])
    rm = infos[-1]["reward_model"]
    assert rm["frame_steps"] == list(range(0, 40, 3)) + [40]
    assert rm["num_frames"] == len(scorer.calls[0][0]) == 15 and rm["length"] == 40

    scorer = FakeScorer()
    env = RewardWrapper(slide(width=200, max_steps=200), scorer, "slide", frame_stride=1, max_frames=8)
    ((rewards, infos),) = run_episodes(env, [[1] * 200])
    rm = infos[-1]["reward_model"]
    steps = rm["frame_steps"]
    assert len(steps) == rm["num_frames"] == 8 and steps[0] == 0 and steps[-1] == 200
    assert steps == sorted(set(steps))
    assert rm["recorded_frames"] <= 2 * 8 + 1  # memory stays bounded
    assert np.asarray(scorer.calls[0][0]).shape == (8, 32, 48, 3)


def test_frames_from_an_observation_key_and_instruction_sources():
    scorer = FakeScorer()
    env = RewardWrapper(
        gym.wrappers.TimeLimit(DictObsEnv(render_mode=None), 12), scorer, lambda e: "from the env", frames="pixels"
    )
    env.reset()
    for _ in range(10):
        *_, term, trunc, info = env.step(1)
    assert term and info["reward_model"]["score"] == 5
    env.reset(options={"instruction": "an override"})
    for _ in range(12):
        *_, term, trunc, info = env.step(0)
    assert trunc and info["reward_model"]["instruction"] == "an override"
    assert [c[1] for c in scorer.calls] == ["from the env", "an override"]


def test_env_reward_add_and_reward_value():
    env = RewardWrapper(slide(), FakeScorer(), "slide", env_reward="add")
    ((rewards, infos),) = run_episodes(env, [[1] * 10])
    assert rewards[:-1] == [0.25] * 9 and rewards[-1] == 0.25 + 5
    out = RewardOutput(score=4, probs=[0, 0, 0.2, 0.6, 0.2], expected=4.0)
    assert episode_reward_value(out) == 4.0
    assert episode_reward_value(out, "score", normalize=True) == 0.75
    assert episode_reward_value(RewardOutput(score=2), "expected", normalize=True) == 0.25
    with pytest.raises(ValueError, match="reward_from"):
        episode_reward_value(out, "median")


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        RewardWrapper(SlideEnv(render_mode=None), FakeScorer(), "x")
    with pytest.raises(ValueError, match="dict observation"):
        RewardWrapper(SlideEnv(), FakeScorer(), "x", frames="pixels")
    with pytest.raises(ValueError, match="no key 'rgb'"):
        RewardWrapper(DictObsEnv(), FakeScorer(), "x", frames="rgb")
    with pytest.raises(ValueError, match="frame_stride"):
        RewardWrapper(SlideEnv(), FakeScorer(), "x", frame_stride=0)
    with pytest.raises(TypeError, match="Scorer"):
        RewardWrapper(SlideEnv(), object(), "x")
    env = RewardWrapper(SlideEnv(), FakeScorer(), "x", frame_transform=lambda f: f[..., 0])
    with pytest.raises(ValueError, match=r"episode 0 step 0: render\(\) gave a frame of shape \(32, 48\)"):
        env.reset()
    with pytest.raises(ValueError, match="non-empty string"):
        RewardWrapper(SlideEnv(), FakeScorer(), lambda e: "").reset()


def test_render_returning_none_gives_a_recorded_fallback_and_the_loop_keeps_running():
    for mode in ("sync", "async"):
        scorer = FakeScorer()
        env = RewardWrapper(
            gym.wrappers.TimeLimit(SlideEnv(none_frames=True), 5), scorer, "x", mode=mode, fallback_reward=-1.0
        )
        with pytest.warns(UserWarning, match=r"episode \d: no frames recorded \(render\(\) returned None on 6 of 6"):
            results = run_episodes(env, [[1] * 5, [1] * 5])
            got = env.pop_rewards(wait=True)
        assert [r.reward for r in got] == [-1.0, -1.0] and all(r.fallback for r in got)
        assert got[1].error.startswith("episode 1: no frames recorded")
        assert scorer.calls == []
        if mode == "sync":
            assert results[0][0][-1] == -1.0 and results[0][1][-1]["reward_model"]["fallback"] is True

    env = RewardWrapper(gym.wrappers.TimeLimit(SlideEnv(none_frames=True), 3), FakeScorer(), "x", on_error="raise")
    env.reset()
    env.step(1), env.step(1)
    with pytest.raises(RewardScoringError, match="episode 0: no frames"):
        env.step(1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_scorer_failure_falls_back_and_next_episode_is_scored(mode):
    env = RewardWrapper(slide(), FakeScorer(fail_on={1}), "x", mode=mode, fallback_reward=0.5)
    with pytest.warns(UserWarning, match="episode 1: RuntimeError: server said 500"):
        results = run_episodes(env, EPISODES[:3])
        got = env.pop_rewards(wait=True)
    assert [r.fallback for r in got] == [False, True, False]
    assert got[1].reward == 0.5 and got[1].error == "episode 1: RuntimeError: server said 500"
    assert got[0].score == 5 and got[2].score == 1
    if mode == "sync":
        assert results[1][0][-1] == 0.5 and results[1][1][-1]["reward_model"]["error"].endswith("server said 500")

    env = RewardWrapper(slide(), FakeScorer(fail_on={0}), "x", mode=mode, on_error="raise")
    with pytest.raises(RewardScoringError, match="episode 0: RuntimeError"):
        run_episodes(env, EPISODES[:1])
        env.pop_rewards(wait=True)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_scorer_timeout_falls_back_and_later_episodes_still_score(mode):
    scorer = FakeScorer(hang_on={0})
    env = RewardWrapper(slide(), scorer, "x", mode=mode, timeout=0.3)
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_episodes(env, EPISODES[:3])
        got = env.pop_rewards(wait=True)
    elapsed = time.monotonic() - start
    scorer.release.set()
    env.close()
    assert elapsed < 5
    assert got[0].fallback and "TimeoutError" in got[0].error and "timeout=0.3s" in got[0].error
    assert [r.fallback for r in got[1:]] == [False, False] and got[2].score == 1
    assert any("timeout" in str(w.message) for w in caught)


def test_close_waits_for_pending_scores():
    env = RewardWrapper(slide(), FakeScorer(delay=0.2), "x", mode="async")
    run_episodes(env, EPISODES[:2])
    env.close()
    assert [r.episode for r in env.pop_rewards()] == [0, 1]


def test_agreement_matches_scipy():
    from scipy.stats import pointbiserialr

    success = [1, 1, 0, 0, 1, 0]
    rewards = [5, 4, 1, 3, 5, 5]
    a = agreement(success, rewards, threshold=5)
    assert a["accuracy"] == pytest.approx(4 / 6)
    assert a["point_biserial"] == pytest.approx(pointbiserialr(success, rewards).statistic)
    assert a["mean_reward_success"] == pytest.approx(14 / 3) and a["mean_reward_failure"] == pytest.approx(3)
    assert np.isnan(agreement([1, 1], [5, 3])["point_biserial"])
    with pytest.raises(ValueError, match="one length"):
        agreement([1], [1, 2])
