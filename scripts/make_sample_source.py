"""Generate the bundled sample source (roboreward/data/sample_source/) with Meta-World 3.1 rollouts.

Every video shows a real simulated episode and every label is the simulator's own outcome:

* ``lerobot/metaworld_sawyer`` — a LeRobot v3.0 dataset of scripted-expert successes (like OXE: all label 5),
  two cameras (``observation.images.corner``, ``observation.images.gripper``); episodes of one camera are
  concatenated in one mp4 with per-episode ``from_timestamp``/``to_timestamp``, as LeRobot v3 does.
* ``roboarena/evaluation_sessions/<id>/`` — RoboArena-style A/B sessions: the same task and initial state run by
  the scripted expert and by a degraded policy (action noise or an early stop). ``partial_success`` in [0, 1] is
  1.0 when Meta-World reports ``info["success"]`` at the end, else the fraction of the initial
  object-to-target distance that was closed (capped at 0.95).

Run (about 4 minutes on 2 cores; osmesa renders ~0.1 s per frame)::

    MUJOCO_GL=osmesa python scripts/make_sample_source.py --out roboreward/data/sample_source
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import numpy as np  # noqa: E402

FPS = 10
RENDER_EVERY = 3  # one video frame every 3 simulator steps
SIZE = (160, 120)  # width, height
MAX_STEPS = 150

#: (Meta-World env, scripted policy class, natural instruction)
TASKS: list[tuple[str, str, str]] = [
    ("pick-place-v3", "SawyerPickPlaceV3Policy", "pick up the puck and place it at the target"),
    ("drawer-open-v3", "SawyerDrawerOpenV3Policy", "open the drawer"),
    ("button-press-topdown-v3", "SawyerButtonPressTopdownV3Policy", "press the button from the top"),
    ("door-open-v3", "SawyerDoorOpenV3Policy", "open the door"),
    ("push-v3", "SawyerPushV3Policy", "push the puck to the goal"),
    ("window-open-v3", "SawyerWindowOpenV3Policy", "slide the window open"),
]


def rollout(
    env_name: str,
    policy_name: str,
    seed: int,
    cameras: list[str],
    *,
    noise: float = 0.0,
    stop_at_progress: float | None = None,
    tail: int = 6,
    size: tuple[int, int] = SIZE,
) -> dict:
    """Run one episode; returns frames per camera, states, actions, success and partial progress."""
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the environments)
    from metaworld import policies

    policy = getattr(policies, policy_name)()
    env = gym.make(
        "Meta-World/MT1",
        env_name=env_name,
        seed=seed,
        render_mode="rgb_array",
        width=size[0],
        height=size[1],
        camera_name=cameras[0],
    )
    obs, _ = env.reset(seed=seed)
    unwrapped = env.unwrapped
    rng = np.random.default_rng(seed + 1000)
    frames: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    states, actions = [], []
    first_dist = None
    success_at = None
    info: dict = {}

    import mujoco

    cam_ids = {cam: mujoco.mj_name2id(unwrapped.model, mujoco.mjtObj.mjOBJ_CAMERA, cam) for cam in cameras}

    def render_all() -> None:
        for cam in cameras:  # one renderer, switched between the model's cameras; MuJoCo images are upside down
            unwrapped.mujoco_renderer.camera_id = cam_ids[cam]
            frames[cam].append(np.ascontiguousarray(env.render()[::-1]))

    stopped_at = None
    for step in range(MAX_STEPS):
        action = policy.get_action(obs)
        if stopped_at is not None:
            action = np.zeros_like(action)  # the policy has given up: it holds still
        if noise:
            action = np.clip(action + rng.normal(0, noise, size=action.shape), -1, 1)
        obs, _, _, _, info = env.step(action)
        states.append(np.asarray(obs[:4], np.float32))
        actions.append(np.asarray(action, np.float32))
        if first_dist is None:
            first_dist = float(info["obj_to_target"])
        if step % RENDER_EVERY == 0:
            render_all()
        if info["success"] and success_at is None:
            success_at = step
        closed = 1.0 - float(info["obj_to_target"]) / max(first_dist, 1e-6)
        if stop_at_progress is not None and stopped_at is None and closed >= stop_at_progress:
            stopped_at = step
        end = success_at if success_at is not None else stopped_at
        if end is not None and step >= end + tail * RENDER_EVERY:
            break
    render_all()
    env.close()
    success = bool(info["success"])
    if success:
        progress = 1.0
    else:
        closed = 1.0 - float(info["obj_to_target"]) / max(first_dist or 1e-6, 1e-6)
        progress = float(np.clip(closed, 0.0, 0.95))
    return {
        "frames": {c: np.stack(f) for c, f in frames.items()},
        "states": np.stack(states),
        "actions": np.stack(actions),
        "success": success,
        "progress": round(progress, 3),
        "success_step": success_at,
    }


def write_lerobot(root: Path, n_per_task: int) -> None:
    """A LeRobot v3.0 dataset of scripted successes, two cameras, episodes concatenated per video file."""
    import pandas as pd

    from roboreward.video import write_video

    cams = {"observation.images.corner": "corner", "observation.images.gripper": "gripperPOV"}
    episodes, data_rows, video_frames = [], [], {k: [] for k in cams}
    tasks = [t[2] for t in TASKS]
    index = 0
    ep = 0
    for task_idx, (env_name, policy_name, instruction) in enumerate(TASKS):
        seed, made = 0, 0
        while made < n_per_task:
            r = rollout(env_name, policy_name, 100 * task_idx + seed, list(cams.values()))
            seed += 1
            if not r["success"]:
                continue
            n_frames = len(r["frames"]["corner"])
            row = {
                "episode_index": ep,
                "tasks": [instruction],
                "length": n_frames,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": index,
                "dataset_to_index": index + n_frames,
            }
            for key, cam in cams.items():
                row[f"videos/{key}/chunk_index"] = 0
                row[f"videos/{key}/file_index"] = 0
                video_frames[key].append(r["frames"][cam])
            episodes.append(row)
            # one data row per video frame (the state/action at the rendered steps)
            for i in range(n_frames):
                s = min(i * RENDER_EVERY, len(r["states"]) - 1)
                data_rows.append(
                    {
                        "observation.state": r["states"][s].tolist(),
                        "action": r["actions"][s].tolist(),
                        "timestamp": i / FPS,
                        "frame_index": i,
                        "episode_index": ep,
                        "index": index + i,
                        "task_index": task_idx,
                    }
                )
            index += n_frames
            ep += 1
            made += 1
            print(f"lerobot episode {ep}: {instruction} ({n_frames} frames)", flush=True)
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(data_rows).to_parquet(root / "data" / "chunk-000" / "file-000.parquet", index=False)
    pd.DataFrame({"task_index": range(len(tasks))}, index=pd.Index(tasks, name="task")).to_parquet(
        root / "meta" / "tasks.parquet"
    )
    features = {
        key: {
            "dtype": "video",
            "shape": [SIZE[1], SIZE[0], 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p"},
        }
        for key in cams
    }
    features.update(
        {
            "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
            "action": {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "grip"]},
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        }
    )
    info = {
        "codebase_version": "v3.0",
        "robot_type": "sawyer",
        "total_episodes": ep,
        "total_frames": index,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "fps": FPS,
        "splits": {"train": f"0:{ep}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    # as LeRobot v3 does: encode each episode on its own, then concatenate the encodes by stream copy
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from build_helpers import concat_mp4  # test helper: what LeRobot v3's writer does

    for key, chunks in video_frames.items():
        with tempfile.TemporaryDirectory() as tmp:
            parts = [write_video(Path(tmp) / f"{i}.mp4", f, FPS, crf=28) for i, f in enumerate(chunks)]
            spans = concat_mp4(parts, root / "videos" / key / "chunk-000" / "file-000.mp4")
        for row, (t0, t1) in zip(episodes, spans, strict=True):
            row[f"videos/{key}/from_timestamp"], row[f"videos/{key}/to_timestamp"] = t0, t1
    pd.DataFrame(episodes).to_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet", index=False)


def write_roboarena(root: Path, n_sessions: int, workers: int = 2) -> None:
    """RoboArena-style A/B evaluation sessions: expert vs. a degraded policy on the same task and seed."""
    cams = {"left_shoulder": "corner", "right_shoulder": "corner2", "wrist": "gripperPOV"}
    # the degraded policy B: action noise, or the expert giving up once it has closed part of the distance
    degraded = [
        ("early_stop_expert", {"stop_at_progress": 0.3}),
        ("noisy_expert", {"noise": 0.8}),
        ("early_stop_expert", {"stop_at_progress": 0.5}),
        ("early_stop_expert", {"stop_at_progress": 0.7}),
        ("noisy_expert", {"noise": 0.4}),
        ("early_stop_expert", {"stop_at_progress": 0.9}),
        ("early_stop_expert", {"stop_at_progress": 0.45}),
        ("early_stop_expert", {"stop_at_progress": 0.55}),
    ]
    jobs = [(s, degraded[s % len(degraded)]) for s in range(n_sessions)]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers) as pool:
        pool.starmap(_write_session, [(root, s, name, kwargs, cams) for s, (name, kwargs) in jobs])


def _write_session(root: Path, s: int, b_name: str, b_kwargs: dict, cams: dict[str, str]) -> None:
    import yaml

    from roboreward.video import write_video

    env_name, policy_name, instruction = TASKS[s % len(TASKS)]
    seed = 7000 + s
    runs = {
        "A": ("scripted_expert", rollout(env_name, policy_name, seed, list(cams.values()))),
        "B": (b_name, rollout(env_name, policy_name, seed, list(cams.values()), **b_kwargs)),
    }
    sid = f"sess_{s:04d}"
    sdir = root / "evaluation_sessions" / sid
    meta = {"session_id": sid, "language_instruction": instruction, "environment": env_name, "policies": {}}
    for side, (name, r) in runs.items():
        for fname, cam in cams.items():
            write_video(sdir / f"{side}_{name}" / f"{fname}.mp4", r["frames"][cam], FPS, crf=28)
        meta["policies"][side] = {"policy_name": name, "partial_success": r["progress"]}
        print(f"roboarena {sid}/{side}: {name} progress={r['progress']}", flush=True)
    pa, pb = meta["policies"]["A"]["partial_success"], meta["policies"]["B"]["partial_success"]
    meta["preference"] = "A" if pa > pb else "B" if pb > pa else "tie"
    (sdir / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("roboreward/data/sample_source"))
    ap.add_argument("--episodes-per-task", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--parts", default="lerobot,roboarena", help="which parts to (re)generate")
    ap.add_argument("--workers", type=int, default=2, help="processes for the RoboArena sessions")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if "lerobot" in parts:
        shutil.rmtree(args.out / "lerobot", ignore_errors=True)
        write_lerobot(args.out / "lerobot" / "metaworld_sawyer", args.episodes_per_task)
    if "roboarena" in parts:
        shutil.rmtree(args.out / "roboarena", ignore_errors=True)
        write_roboarena(args.out / "roboarena", args.sessions, args.workers)
    (args.out / "README.md").write_text(
        "# RoboReward sample source\n\nMeta-World 3.1 rollouts made by `scripts/make_sample_source.py`: "
        "a LeRobot v3.0\ndataset of scripted successes (`lerobot/metaworld_sawyer`) and RoboArena-style A/B sessions\n"
        "(`roboarena/evaluation_sessions`) whose `partial_success` is the simulator's outcome.\n"
    )


if __name__ == "__main__":
    main()
