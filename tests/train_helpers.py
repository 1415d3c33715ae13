"""A small dataset in the released layout (``<split>/metadata.jsonl`` + mp4) for the training tests."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_frames

from roboreward.video import write_video

TASKS = ("pick up the red block", "open the top drawer", "push the cup to the left", "close the laptop lid")


def write_fixture_dataset(root: Path, n_train: int = 8, n_val: int = 4, *, frames: int = 8, size=(48, 64)) -> Path:
    """Write train/validation splits of tiny videos whose reward follows the video (seeded, deterministic)."""
    for split, n in (("train", n_train), ("validation", n_val)):
        sdir = root / split
        rows = []
        for i in range(n):
            reward = 1 + (i % 5)
            name = f"{'bridge' if i % 2 else 'robo_arena'}/ep{i:03d}.mp4"
            write_video(sdir / name, make_frames(frames, *size, seed=reward), fps=10)
            rows.append({"file_name": name, "task": TASKS[i % len(TASKS)], "reward": reward})
        (sdir / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


def write_brightness_dataset(root: Path, n_train: int = 32, n_val: int = 16, *, seed: int = 0) -> Path:
    """A synthetic set with a visually obvious label: the episode ends on a bright frame (reward 5) or a dark one
    (reward 1), after the same kind of moving-square frames; the instruction says nothing about it. Balanced
    classes, so the constant majority baseline has MAE 2."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("validation", n_val)):
        rows = []
        for i in range(n):
            reward = 5 if i % 2 else 1
            frames = make_frames(8, 48, 64, seed=int(rng.integers(1 << 30)))
            frames[-2:] = 235 if reward == 5 else 20
            name = f"synthetic/{split}_{i:03d}.mp4"
            write_video(root / split / name, frames, fps=10)
            rows.append({"file_name": name, "task": TASKS[int(rng.integers(len(TASKS)))], "reward": reward})
        (root / split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root
