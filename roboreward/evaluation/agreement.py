"""How well episodic rewards track a binary success flag (e.g. a simulator's ``success`` in RL rollouts)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def agreement(success: Sequence[bool | float], rewards: Sequence[float], threshold: float = 5.0) -> dict[str, float]:
    """Agreement of episodic rewards with success.

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
