"""Does a reward model track success on your task? Score Meta-World episodes and compare with the simulator.

Rolls out Meta-World's scripted policy with and without Gaussian action noise, scores every episode with a
RoboReward model through :class:`roboreward.rl.RewardWrapper`, and prints, per episode, the simulator's
``success`` flag next to the model's 1-5 score, then an agreement summary (accuracy of ``score >= threshold``
against success, point-biserial correlation of E[score] with success).

    # runs anywhere (CPU, no weights): a tiny random model, so the numbers mean nothing but the path is real
    python examples/metaworld_reward.py --model tiny --episodes 2

    # a released checkpoint (GPU recommended), or any OpenAI-compatible server (e.g. vLLM)
    python examples/metaworld_reward.py --model teetone/RoboReward-4B --task drawer-open-v3 --episodes 10
    python examples/metaworld_reward.py --model openai:teetone/RoboReward-8B@http://gpu-host:8000/v1 --async

Rendering is headless with OSMesa (``MUJOCO_GL=osmesa`` unless set). See docs/rl.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.evaluation.agreement import agreement
from roboreward.rl import EpisodeReward, RewardWrapper, lighten_mujoco_rendering, setup_headless_mujoco

#: Instructions for a few Meta-World tasks (any other task needs --instruction).
INSTRUCTIONS = {
    "pick-place-v3": "pick up the red puck and place it at the goal position",
    "drawer-open-v3": "open the drawer",
    "drawer-close-v3": "close the drawer",
    "reach-v3": "move the gripper to the goal position",
    "push-v3": "push the red puck to the goal position",
    "button-press-topdown-v3": "press the button from the top",
    "door-open-v3": "open the door",
    "window-open-v3": "slide the window open",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default="metaworld",
        help="scorer spec: metaworld (bundled) | tiny | <folder or Hub id> | openai:<model>@<url>",
    )
    p.add_argument("--task", default="pick-place-v3", help="Meta-World v3 task name")
    p.add_argument("--instruction", default=None, help="task instruction (default: a built-in one for the task)")
    p.add_argument("--episodes", type=int, default=4, help="episodes per noise level")
    p.add_argument("--noise", type=float, nargs="+", default=[0.0, 1.0], help="action noise std levels")
    p.add_argument("--steps", type=int, default=120, help="max steps per episode")
    p.add_argument("--size", type=int, default=128, help="render width = height in pixels")
    p.add_argument("--camera", default="corner2", help="Meta-World camera name")
    p.add_argument("--no-flip", action="store_true", help="do not flip frames vertically (OSMesa renders upside down)")
    p.add_argument("--stride", type=int, default=4, help="keep every n-th frame")
    p.add_argument("--max-frames", type=int, default=32, help="frames sent to the scorer at most")
    p.add_argument("--threshold", type=float, default=5.0, help="score counted as success (rubric: 5 = success)")
    p.add_argument("--async", dest="async_", action="store_true", help="score in the background while rolling out")
    p.add_argument("--timeout", type=float, default=None, help="seconds per scoring call before the fallback")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for episodes.jsonl, agreement.png and videos")
    p.add_argument("--save-videos", action="store_true", help="write each scored clip to <out>/videos/*.mp4")
    return p.parse_args(argv)


def rollout(args: argparse.Namespace, scorer: Any = None) -> list[dict[str, Any]]:
    """Run the episodes; return one row per episode (noise, success, score, ...), in episode order."""
    setup_headless_mujoco()
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers Meta-World/MT1)
    from gymnasium.utils import seeding
    from metaworld.policies import ENV_POLICY_MAP

    if args.task not in ENV_POLICY_MAP:
        raise SystemExit(f"no scripted policy for task {args.task!r}; tasks: {', '.join(sorted(ENV_POLICY_MAP))}")
    instruction = args.instruction or INSTRUCTIONS.get(args.task)
    if not instruction:
        raise SystemExit(f"no built-in instruction for {args.task!r}: pass --instruction")
    env = gym.make(
        "Meta-World/MT1",
        env_name=args.task,
        render_mode="rgb_array",
        camera_name=args.camera,
        width=args.size,
        height=args.size,
        max_episode_steps=args.steps,
        seed=args.seed,
        disable_env_checker=True,
    )
    lighten_mujoco_rendering(env)
    env = RewardWrapper(
        env,
        scorer if scorer is not None else args.model,
        instruction,
        frame_stride=args.stride,
        max_frames=args.max_frames,
        frame_transform=None if args.no_flip else (lambda f: f[::-1]),
        mode="async" if args.async_ else "sync",
        timeout=args.timeout,
        keep_video=args.save_videos,
    )
    policy = ENV_POLICY_MAP[args.task]()
    plan = [(noise, args.seed + i) for noise in args.noise for i in range(args.episodes)]
    meta: list[dict[str, Any]] = []
    from tqdm import tqdm

    try:
        for noise, seed in tqdm(plan, desc=f"{args.task} episodes", unit="ep"):
            rng = np.random.default_rng(seed)
            # MT1 draws the episode's task (object and goal positions) from the env's RNG *before* reset(seed)
            # reseeds it; seeding it first makes the episode a function of its seed, so noise levels are paired.
            env.unwrapped.np_random, _ = seeding.np_random(seed)
            obs, _ = env.reset(seed=seed)
            ever = False
            while True:
                action = policy.get_action(obs) + rng.normal(0.0, noise, env.action_space.shape)
                obs, _, terminated, truncated, info = env.step(np.clip(action, -1.0, 1.0))
                ever = ever or bool(info["success"])
                if terminated or truncated:
                    break
            meta.append({"noise": noise, "seed": seed, "success_ever": ever})
        results: list[EpisodeReward] = env.pop_rewards(wait=True)
    finally:
        env.close()
    rows = []
    for m, r in zip(meta, results, strict=True):
        rows.append(
            {
                "episode": r.episode,
                **m,
                "success": bool(r.final_info.get("success", 0.0)),
                **r.to_dict(),
                "video_frames": r.video,
            }
        )
    return rows


def report(rows: list[dict[str, Any]], threshold: float, out: Path | None = None) -> dict[str, float]:
    """Print the per-episode table and the agreement summary; optionally save jsonl, PNG and videos."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title="Simulator success vs reward model")
    for col in ("ep", "noise", "seed", "steps", "success", "ever", "score", "E[score]", "p(5)", "note"):
        table.add_column(escape(col), justify="left" if col == "note" else "right")
    for r in rows:
        p5 = f"{r['probs'][4]:.2f}" if r["probs"] else "-"
        table.add_row(
            str(r["episode"]),
            f"{r['noise']:g}",
            str(r["seed"]),
            str(r["length"]),
            "[green]yes[/]" if r["success"] else "[red]no[/]",
            "yes" if r["success_ever"] else "no",
            "-" if r["score"] is None else str(r["score"]),
            "-" if r["expected"] is None else f"{r['expected']:.2f}",
            p5,
            escape((r["error"] or "")[:60]),
        )
    console.print(table)
    scored = [r for r in rows if not r["fallback"]]
    if not scored:
        console.print("[red]no episode could be scored[/]")
        return {}
    success = [r["success"] for r in scored]
    by_score = agreement(success, [r["score"] for r in scored], threshold=threshold)
    by_expected = agreement(success, [r["expected"] for r in scored], threshold=threshold)
    summary = {
        "episodes": len(rows),
        "scored": len(scored),
        "success_rate": by_score["success_rate"],
        f"accuracy(score>={threshold:g})": by_score["accuracy"],
        "point_biserial(score)": by_score["point_biserial"],
        "point_biserial(E[score])": by_expected["point_biserial"],
        "mean E[score] | success": by_expected["mean_reward_success"],
        "mean E[score] | failure": by_expected["mean_reward_failure"],
    }
    summary_table = Table(title="Agreement (NaN: undefined, e.g. all episodes succeeded)")
    summary_table.add_column("metric")
    summary_table.add_column("value", justify="right")
    for k, v in summary.items():
        summary_table.add_row(escape(k), f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(summary_table)
    if out is not None:
        save(rows, summary, out)
        console.print(f"wrote {out}/episodes.jsonl, {out}/agreement.png")
    return summary


def save(rows: list[dict[str, Any]], summary: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from roboreward.video import write_video

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "episodes.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if k != "video_frames"}) + "\n")
            if r["video_frames"] is not None:
                write_video(out / "videos" / f"episode_{r['episode']:03d}.mp4", r["video_frames"], fps=r["fps"] or 10.0)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    rng = np.random.default_rng(0)
    for flag, color in ((False, "tab:red"), (True, "tab:green")):
        ys = [r["expected"] for r in rows if r["success"] == flag and r["expected"] is not None]
        ax.scatter(np.full(len(ys), float(flag)) + rng.uniform(-0.08, 0.08, len(ys)), ys, color=color, alpha=0.7)
    ax.set_xticks([0, 1], ["failure", "success"])
    ax.set_ylim(0.8, 5.2)
    ax.set_ylabel("E[score] (1-5)")
    ax.set_title("Reward model vs simulator success")
    fig.tight_layout()
    fig.savefig(out / "agreement.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = rollout(args)
    report(rows, args.threshold, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
