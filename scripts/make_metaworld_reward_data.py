"""Generate Meta-World episodes for training and evaluating a small reward model (docs/reward_quality.md).

Uses the bundled sample's own generator (:func:`make_sample_source.rollout`, Meta-World 3.1, the sample's six
tasks) and writes RoboArena-style A/B sessions that ``roboreward build --source roboarena:DIR`` reads: each
session runs two policy variants on the same task and initial state, and ``partial_success`` is the simulator's
outcome (1.0 on ``info["success"]``, else the fraction of the initial object-to-target distance closed, capped at
0.79 so that label 5 means a simulator success). Variants: the scripted expert, the expert with action noise
(0.3 / 0.8), the expert giving up after closing 10-70% of the distance, and random flailing (noise 3.0 on
clipped actions). ``meta.jsonl`` keeps every episode's simulator success and progress.

Run (two processes; about 5 s per episode on a quiet core)::

    MUJOCO_GL=osmesa python scripts/make_metaworld_reward_data.py --out data/metaworld/train --sessions-per-task 24
    MUJOCO_GL=osmesa python scripts/make_metaworld_reward_data.py --out data/metaworld/test --sessions-per-task 6 \
        --seed-offset 50000 --size 160x160 --paraphrase
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_sample_source import FPS, MAX_STEPS, RENDER_EVERY, TASKS, rollout  # noqa: E402

from roboreward.rubric import simulator_progress  # noqa: E402

#: (name, rollout kwargs); sessions pair variant s with variant s + 3 (mod len) on one seed.
VARIANTS: list[tuple[str, dict]] = [
    ("scripted_expert", {}),
    ("early_stop_expert_10", {"stop_at_progress": 0.1}),
    ("noisy_expert_03", {"noise": 0.3}),
    ("early_stop_expert_30", {"stop_at_progress": 0.3}),
    ("random_flailing", {"noise": 3.0}),
    ("early_stop_expert_50", {"stop_at_progress": 0.5}),
    ("noisy_expert_08", {"noise": 0.8}),
    ("early_stop_expert_70", {"stop_at_progress": 0.7}),
]

#: Training wordings: each session takes one by its seed (the first is the bundled sample's). A model that saw a
#: single wording per task keys on those exact tokens and falls apart on a new wording (fresh-episode MAE 0.57 vs
#: 0.46 with the trained wording; with four wordings still 0.72 vs 0.59 at 160x160, docs/reward_quality.md): eight
#: per task, none of them in :data:`PARAPHRASES`.
TRAIN_WORDINGS: dict[str, tuple[str, ...]] = {
    "pick up the puck and place it at the target": (
        "pick up the puck and place it at the target",
        "pick the puck up and put it on the target",
        "lift the puck and place it on the goal",
        "move the puck to the goal by picking it up",
        "grab the puck and set it on the target",
        "carry the puck over to the target",
        "pick the puck and drop it at the goal",
        "lift the puck onto the target position",
    ),
    "open the drawer": (
        "open the drawer",
        "pull open the drawer",
        "slide the drawer open",
        "open the drawer fully",
        "open the drawer all the way",
        "drag the drawer toward you",
        "get the drawer open",
        "pull on the drawer handle to open it",
    ),
    "press the button from the top": (
        "press the button from the top",
        "press the button down",
        "press down on the button",
        "hit the button from the top",
        "press the button",
        "press the top of the button",
        "push down the button with the gripper",
        "press the button all the way down",
    ),
    "open the door": (
        "open the door",
        "pull the door open",
        "open the door fully",
        "rotate the door open",
        "pull the door to open it",
        "open the door wide",
        "turn the door open on its hinge",
        "get the door open",
    ),
    "push the puck to the goal": (
        "push the puck to the goal",
        "push the puck onto the target",
        "slide the puck to the goal",
        "move the puck to the goal by pushing it",
        "push the puck to the target",
        "shove the puck onto the goal",
        "nudge the puck to the goal",
        "push the puck until it reaches the goal",
    ),
    "slide the window open": (
        "slide the window open",
        "open the window",
        "push the window open",
        "slide the window sideways to open it",
        "open the window by sliding it",
        "slide the window to open it",
        "move the window open",
        "push the window sideways until it is open",
    ),
}

#: Wordings not used in training (the evaluation set's instructions).
PARAPHRASES: dict[str, str] = {
    "pick up the puck and place it at the target": "grasp the puck and put it down on the goal spot",
    "open the drawer": "pull the drawer out",
    "press the button from the top": "push the button down from above",
    "open the door": "swing the door open",
    "push the puck to the goal": "slide the puck over to the target",
    "slide the window open": "move the window sash to open it",
}
CAMERA = "corner"
#: Every video has this many frames: an episode that ended early (success, or the expert giving up) holds its last
#: frame to the end. Without it the length of a video gives its label away (successes stop early, failures run to
#: the step limit) and a model learns the length, not the scene: it then fails in RL, where episodes have one length.
EPISODE_FRAMES = MAX_STEPS // RENDER_EVERY + 1


def pad_frames(frames, n: int = EPISODE_FRAMES):
    """``frames`` held at their last frame up to ``n`` frames (longer videos are kept as they are)."""
    import numpy as np

    if len(frames) >= n:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])


def pad_existing(root: Path) -> int:
    """Pad the videos of sessions written before :data:`EPISODE_FRAMES` existed; returns how many changed."""
    from roboreward.video import probe, read_video, write_video

    changed = 0
    for video in sorted(root.glob("evaluation_sessions/*/*/left_shoulder.mp4")):
        total = probe(video).num_frames
        if total < EPISODE_FRAMES:
            frames = read_video(video, num_frames=total).frames
            write_video(video, pad_frames(frames), FPS, crf=23)
            changed += 1
    return changed


def wording(instruction: str, seed: int, paraphrase: bool) -> str:
    """The instruction a session is written with: the held-out paraphrase, or a training wording chosen by seed."""
    if paraphrase:
        return PARAPHRASES[instruction]
    options = TRAIN_WORDINGS[instruction]
    # Drawn from the seed, never ``seed % n``: a session's pair of variants is ``s % len(VARIANTS)`` and the seeds are
    # ``offset + 1000 * task + s`` with offsets and 1000 multiples of 8, so a wording picked by ``seed % 8`` named the
    # policy that made the episode, a label leak a model learns instead of the video.
    import numpy as np

    return options[int(np.random.default_rng([seed, 0x5EED]).integers(len(options)))]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_session(sdir: Path, meta: dict, rows: list[dict]) -> None:
    """A session's ``episodes.jsonl`` and then its ``metadata.yaml`` (written last: it marks the session done)."""
    import yaml

    sdir.mkdir(parents=True, exist_ok=True)
    _write_jsonl(sdir / "episodes.jsonl", rows)
    (sdir / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def reword_existing(root: Path) -> int:
    """Give the sessions already in ``root`` (written with one wording per task) their :func:`wording`; returns how
    many changed. Videos are untouched; ``meta.jsonl`` is rewritten."""
    import yaml

    original = {t[0]: t[2] for t in TASKS}
    changed, rows = 0, []
    for meta_path in sorted(root.glob("evaluation_sessions/*/metadata.yaml")):
        meta = yaml.safe_load(meta_path.read_text())
        episodes = meta_path.parent / "episodes.jsonl"
        eps = [json.loads(line) for line in episodes.read_text().splitlines()]
        text = wording(original[meta["environment"]], int(eps[0]["seed"]), paraphrase=False)
        if meta["language_instruction"] != text:
            changed += 1
            meta["language_instruction"] = text
            for e in eps:
                e["instruction"] = text
            _write_session(meta_path.parent, meta, eps)
        rows += eps
    _write_jsonl(root / "meta.jsonl", rows)
    return changed


def _session(out: Path, task_idx: int, s: int, seed: int, size: tuple[int, int], paraphrase: bool) -> list[dict]:
    from roboreward.video import write_video

    env_name, policy_name, instruction = TASKS[task_idx]
    sid = f"{env_name}_{seed:06d}"
    sdir = out / "evaluation_sessions" / sid
    if (sdir / "metadata.yaml").is_file():
        return [json.loads(line) for line in (sdir / "episodes.jsonl").read_text().splitlines()]
    text = wording(instruction, seed, paraphrase)
    meta = {"session_id": sid, "language_instruction": text, "environment": env_name, "policies": {}}
    rows = []
    for side, v in (("A", s % len(VARIANTS)), ("B", (s + 3) % len(VARIANTS))):
        name, kwargs = VARIANTS[v]
        r = rollout(env_name, policy_name, seed, [CAMERA], size=size, **kwargs)
        progress = simulator_progress(r["success"], r["progress"])
        write_video(sdir / f"{side}_{name}" / "left_shoulder.mp4", pad_frames(r["frames"][CAMERA]), FPS, crf=23)
        meta["policies"][side] = {"policy_name": name, "partial_success": round(progress, 3)}
        rows.append(
            {
                "session": sid,
                "side": side,
                "env": env_name,
                "policy": name,
                "seed": seed,
                "success": r["success"],
                "progress": round(progress, 3),
                "frames": len(r["frames"][CAMERA]),
                "instruction": text,
            }
        )
    _write_session(sdir, meta, rows)
    print(f"{sid}: " + ", ".join(f"{r['policy']}={r['progress']}" for r in rows), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sessions-per-task", type=int, default=24)
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed (keep train and test seeds apart)")
    ap.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of the rendered frames")
    ap.add_argument("--paraphrase", action="store_true", help="use the held-out wordings of the instructions")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pad-existing", action="store_true", help="only pad the videos already in --out and exit")
    ap.add_argument(
        "--reword-existing", action="store_true", help="only give the sessions in --out their training wordings"
    )
    args = ap.parse_args()
    if args.pad_existing:
        print(f"padded {pad_existing(args.out)} videos to {EPISODE_FRAMES} frames in {args.out}")
        return
    if args.reword_existing:
        print(f"reworded {reword_existing(args.out)} sessions in {args.out}")
        return
    w, h = (int(x) for x in args.size.lower().split("x"))
    jobs = [
        (args.out, t, s, args.seed_offset + 1000 * t + s, (w, h), args.paraphrase)
        for s in range(args.sessions_per_task)
        for t in range(len(TASKS))
    ]
    with mp.get_context("fork").Pool(args.workers) as pool:
        rows = [r for rs in pool.starmap(_session, jobs) for r in rs]
    _write_jsonl(args.out / "meta.jsonl", rows)
    ok = sum(r["success"] for r in rows)
    print(f"{len(rows)} episodes, {ok} simulator successes -> {args.out}")


if __name__ == "__main__":
    main()
