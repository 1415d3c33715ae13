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
