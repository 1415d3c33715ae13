"""Does a reward model improve a policy? Cross-entropy method on Meta-World, rewarded by a RoboReward model.

The base policy is Meta-World's scripted expert made unreliable: a fixed miscalibration ``--bias`` added to its
actions and Gaussian action noise ``--noise`` (on drawer-open-v3 the defaults leave about 17% success). RL steers
it: the cross-entropy method (CEM) searches an action offset ``theta`` (``--steer offset``; ``offset-gain`` adds a
per-dimension gain), ``action = clip((1 + gain) * expert(obs) + bias + theta + noise)``, and ranks candidates by
their episodic reward. Six arms, each over ``--seeds`` (mean and spread across seeds):

* ``base``: the base policy (theta = 0), no RL;
* ``model``: CEM with the reward of ``--model`` (through :class:`roboreward.rl.RewardWrapper`, E[score] on [0, 1]);
* ``oracle``: CEM with the simulator's success (at any step, as Meta-World counts it) as the reward (the "human
  reward" upper bound);
* ``oracle-progress``: CEM with the label the project's Meta-World data gives an episode, from the simulator's
  success and progress (:func:`roboreward.rubric.simulator_progress` through
  :func:`~roboreward.rubric.progress_to_label`, on [0, 1]): the annotator the reward model learnt to imitate, a
  dense 1-5 reward like a human's progress score;
* ``oracle-distance``: CEM with the simulator's progress itself, unbinned (1.0 on success, else the fraction of
  the distance closed, capped at 0.79): the densest ground truth there is;
* ``random``: CEM with the reward of ``--random-model`` (the tiny randomly initialised model: a bad reward).

Every candidate policy is judged by the same thing at the end: the simulator's success on ``--eval-episodes``
held-out layouts (the same layouts for every arm and seed), after each iteration (the curve) and at the end (the
table). Rollouts share random numbers across arms (layouts and noise per seed, iteration and candidate).

    # CPU, the tiny random model in both model arms (plumbing: the numbers mean nothing)
    python examples/rl_cem_metaworld.py --model tiny --iterations 2 --population 4 --steps 40 --out runs/cem
    # a trained reward model (docs/reward_quality.md)
    python examples/rl_cem_metaworld.py --model metaworld --out runs/cem_metaworld

Writes ``results.json`` (settings, per-arm per-seed histories), ``table.md`` and ``success_vs_iterations.png``.
Frames are rendered as the project's Meta-World data is (camera ``corner``, flipped, 160x120, one frame every 3
steps, 30 steps per second of video); only the model arms render.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.rl import RewardWrapper, lighten_mujoco_rendering, setup_headless_mujoco
from roboreward.rubric import progress_to_label, simulator_progress

#: The instructions of the project's Meta-World data (scripts/make_sample_source.py).
INSTRUCTIONS = {
    "pick-place-v3": "pick up the puck and place it at the target",
    "drawer-open-v3": "open the drawer",
    "button-press-topdown-v3": "press the button from the top",
    "door-open-v3": "open the door",
    "push-v3": "push the puck to the goal",
    "window-open-v3": "slide the window open",
    "reach-v3": "reach the goal position",
}
#: Miscalibrations that leave the noisy expert (noise 0.3) weak: drawer-open-v3 at 0.17 +- 0.12 held-out success in
#: the default 150 steps (3 seeds, docs/reward_quality.md); reach-v3 at about 10% in 100 steps.
DEFAULT_BIAS = {"drawer-open-v3": (0.0, -0.2, 0.0, 0.0), "reach-v3": (0.15, 0.0, 0.0, 0.0)}
#: Steps per episode: the length of the bundled model's training episodes (150 steps, 51 frames).
DEFAULT_STEPS = 150
ARMS = ("base", "model", "oracle", "oracle-progress", "oracle-distance", "random")
#: The oracle arms and the simulator reward each is given (:meth:`Rollouts.episode`'s ``oracle``).
ORACLES = {"oracle": "success", "oracle-progress": "progress", "oracle-distance": "distance"}
EVAL_LAYOUT_OFFSET = 1_000_000  # evaluation layouts never coincide with training layouts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default="metaworld",
        help="reward model spec of the 'model' arm (default: the bundled Meta-World model)",
    )
    p.add_argument("--random-model", default="tiny", help="reward model spec of the 'random' (bad reward) arm")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--task", default="drawer-open-v3")
    p.add_argument("--instruction", default=None, help="default: the project's wording for the task")
    p.add_argument("--bias", type=float, nargs=4, default=None, help="action miscalibration of the base policy")
    p.add_argument("--noise", type=float, default=0.3, help="action noise std of the base policy")
    p.add_argument("--steer", choices=("offset", "offset-gain"), default="offset")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--population", type=int, default=8, help="candidates per CEM iteration")
    p.add_argument("--elites", type=int, default=2, help="candidates kept per iteration")
    p.add_argument("--episodes", type=int, default=1, help="episodes per candidate")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out layouts for the true success")
    p.add_argument("--init-std", type=float, default=0.15)
    p.add_argument("--min-std", type=float, default=0.02)
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="steps per episode")
    p.add_argument("--size", default="160x120", help="render WIDTHxHEIGHT (model arms)")
    p.add_argument("--camera", default="corner")
    p.add_argument("--stride", type=int, default=3, help="keep every n-th frame")
    p.add_argument("--env-fps", type=float, default=30.0, help="steps per second of video the scorer is told")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.elites < 1 or args.elites > args.population:
        p.error(f"--elites must be in 1..--population ({args.population}), got {args.elites}")
    for name in ("iterations", "population", "episodes", "eval_episodes", "steps", "stride"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    args.instruction = args.instruction or INSTRUCTIONS.get(args.task)
    if not args.instruction:
        p.error(f"no built-in instruction for {args.task!r}: pass --instruction")
    args.bias = list(args.bias) if args.bias is not None else list(DEFAULT_BIAS.get(args.task, (0.0,) * 4))
    return args


class Rollouts:
    """Runs episodes of the steered base policy on fixed layouts, with or without rendering and a reward model."""

    def __init__(self, args: argparse.Namespace) -> None:
        setup_headless_mujoco()
        import gymnasium as gym
        import metaworld  # noqa: F401  (registers Meta-World/MT1)
        from metaworld.policies import ENV_POLICY_MAP

        if args.task not in ENV_POLICY_MAP:
            raise SystemExit(f"no scripted policy for task {args.task!r}; tasks: {', '.join(sorted(ENV_POLICY_MAP))}")
        self.args = args
        self.expert = ENV_POLICY_MAP[args.task]()
        self.bias = np.asarray(args.bias, dtype=np.float64)
        width, height = (int(x) for x in args.size.lower().split("x"))
        kwargs = dict(env_name=args.task, max_episode_steps=args.steps, disable_env_checker=True)
        self.env = gym.make("Meta-World/MT1", **kwargs)  # no rendering: oracle rewards and evaluation
        self.render_env = gym.make(
            "Meta-World/MT1", render_mode="rgb_array", width=width, height=height, camera_name=args.camera, **kwargs
        )
        lighten_mujoco_rendering(self.render_env)
        self.wrappers: dict[str, RewardWrapper] = {}

    def wrapper(self, scorer: Any, key: str) -> RewardWrapper:
        """The render env wrapped with ``scorer`` (one wrapper per reward model)."""
        if key not in self.wrappers:
            self.wrappers[key] = RewardWrapper(
                self.render_env,
                scorer,
                self.args.instruction,
                frame_stride=self.args.stride,
                fps=self.args.env_fps,
                frame_transform=lambda f: f[::-1],  # MuJoCo renders upside down
                reward_from="expected",
                normalize=True,
            )
        return self.wrappers[key]

    def action(self, theta: np.ndarray, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        expert = self.expert.get_action(obs)
        gain = 1.0 + theta[4:8] if len(theta) == 8 else 1.0
        noise = rng.normal(0.0, self.args.noise, expert.shape)
        return np.clip(gain * expert + self.bias + theta[:4] + noise, -1.0, 1.0)

    def episode(
        self,
        theta: np.ndarray,
        layout: int,
        wrapper: RewardWrapper | None = None,
        noise_seed: int = 0,
        oracle: str = "success",
    ) -> tuple[float, bool]:
        """(episodic reward, simulator success) of one episode on ``layout``.

        Success is Meta-World's: ``info["success"]`` at any step. The flag at the last step is not used: once the
        simulation goes unstable (``MujocoException``, common when a noisy policy keeps pushing an opened door),
        Meta-World returns ``success=False`` for every later step whatever the scene shows. The reward is the
        wrapper's (the reward model's) when given, else the simulator's (the oracles): the success itself
        (``oracle="success"``), the episode's label from its success and the distance closed, on [0, 1]
        (``oracle="progress"``), or that progress unbinned (``oracle="distance"``)."""
        from gymnasium.utils import seeding

        env = wrapper if wrapper is not None else self.env
        # MT1 draws the layout from the env RNG before reset(seed) reseeds it: seed it first (see docs/rl.md)
        env.unwrapped.np_random, _ = seeding.np_random(layout)
        obs, _ = env.reset(seed=layout)
        rng = np.random.default_rng([layout, noise_seed])
        success, first_dist = False, None
        while True:
            obs, _, terminated, truncated, info = env.step(self.action(theta, obs, rng))
            success = success or bool(info["success"])
            first_dist = first_dist or max(float(info["obj_to_target"]), 1e-6)
            if terminated or truncated:
                break
        if wrapper is not None:
            return float(info["reward_model"]["reward"]), success
        if oracle == "success":
            return float(success), success
        progress = simulator_progress(success, 1.0 - float(info["obj_to_target"]) / first_dist)
        if oracle == "distance":
            return progress, success
        if oracle == "progress":
            return (progress_to_label(100 * progress) - 1) / 4, success
        raise ValueError(f"unknown oracle {oracle!r}; choose from {sorted(ORACLES.values())}")

    def success_rate(self, theta: np.ndarray, episodes: int, seed: int) -> float:
        """The true success of ``theta`` on the held-out layouts (no rendering; the noise drawn from ``seed``)."""
        return float(
            np.mean([self.episode(theta, EVAL_LAYOUT_OFFSET + i, noise_seed=seed)[1] for i in range(episodes)])
        )

    def close(self) -> None:
        for wrapper in self.wrappers.values():
            wrapper.close()
        self.render_env.close()
        self.env.close()


def cem(
    rollouts: Rollouts,
    reward: Callable[[np.ndarray, int], tuple[float, bool]],
    seed: int,
    args: argparse.Namespace,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Cross-entropy method over the steering parameters; the history of one seed."""
    dims = 8 if args.steer == "offset-gain" else 4
    rng = np.random.default_rng(seed)
    mean, std = np.zeros(dims), np.full(dims, args.init_std)
    history: dict[str, Any] = {"success": [rollouts.success_rate(mean, args.eval_episodes, seed)], "reward": []}
    history["rollout_success"], history["theta"] = [], [mean.tolist()]
    for it in range(args.iterations):
        thetas = mean + std * rng.standard_normal((args.population, dims))
        scores, successes = [], []
        for i, theta in enumerate(thetas):
            layouts = np.random.SeedSequence([seed, it, i]).generate_state(args.episodes) % EVAL_LAYOUT_OFFSET
            got = [reward(theta, int(layout)) for layout in layouts]
            scores.append(float(np.mean([r for r, _ in got])))
            successes += [s for _, s in got]
        elite = thetas[np.argsort(scores, kind="stable")[::-1][: args.elites]]
        mean, std = elite.mean(axis=0), np.maximum(elite.std(axis=0), args.min_std)
        history["reward"].append(float(np.mean(scores)))
        history["rollout_success"].append(float(np.mean(successes)))
        history["success"].append(rollouts.success_rate(mean, args.eval_episodes, seed))
        history["theta"].append(mean.tolist())
        log(
            f"  seed {seed} iteration {it + 1}/{args.iterations}: mean reward {history['reward'][-1]:.3f}, "
            f"rollout success {history['rollout_success'][-1]:.2f}, held-out success {history['success'][-1]:.2f}"
        )
    return history


def run(args: argparse.Namespace, scorers: dict[str, Any] | None = None, log: Callable[[str], None] = print) -> dict:
    """All arms over all seeds; ``scorers`` maps a spec to a loaded scorer (loaded here when missing)."""
    scorers = dict(scorers or {})
    rollouts = Rollouts(args)
    results: dict[str, Any] = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    results["arms"] = {}
    start = time.monotonic()
    try:
        for arm in args.arms:
            log(f"arm {arm}")
            if arm == "base":
                zero = np.zeros(8 if args.steer == "offset-gain" else 4)
                per = [{"success": [rollouts.success_rate(zero, args.eval_episodes, seed)]} for seed in args.seeds]
                results["arms"][arm] = {"per_seed": per}
                continue
            if arm == "random" and args.random_model == args.model and "model" in results["arms"]:
                log("  same reward model as the 'model' arm: its results (deterministic) are reused")
                results["arms"][arm] = {"per_seed": results["arms"]["model"]["per_seed"], "same_as": "model"}
                continue
            if arm in ORACLES:
                kind = ORACLES[arm]

                def reward(theta: np.ndarray, layout: int, kind: str = kind) -> tuple[float, bool]:
                    return rollouts.episode(theta, layout, noise_seed=layout, oracle=kind)
            else:
                spec = args.model if arm == "model" else args.random_model
                if spec not in scorers:
                    from roboreward.scoring import load_scorer

                    scorers[spec] = load_scorer(spec)
                wrapper = rollouts.wrapper(scorers[spec], spec)

                def reward(theta: np.ndarray, layout: int, wrapper: RewardWrapper = wrapper) -> tuple[float, bool]:
                    return rollouts.episode(theta, layout, wrapper, noise_seed=layout)

            per_seed = [cem(rollouts, reward, seed, args, log) for seed in args.seeds]
            results["arms"][arm] = {"per_seed": per_seed}
    finally:
        rollouts.close()
    for res in results["arms"].values():
        final = [h["success"][-1] for h in res["per_seed"]]
        res["final_success_mean"] = float(np.mean(final))
        res["final_success_std"] = float(np.std(final))
    results["seconds"] = round(time.monotonic() - start, 1)
    return results


def table(results: dict[str, Any]) -> str:
    """The markdown table: true success of each arm at the end, mean and spread over seeds."""
    s = results["settings"]
    lines = [
        f'Task `{s["task"]}` ("{s["instruction"]}"), base policy: expert + bias {s["bias"]} + noise {s["noise"]}; '
        f"CEM {s['iterations']} iterations x {s['population']} candidates x {s['episodes']} episode(s), "
        f"seeds {s['seeds']}; success on {s['eval_episodes']} held-out layouts.",
        "",
        "| arm | reward | simulator success (mean ± std over seeds) | per seed |",
        "|---|---|---|---|",
    ]
    what = {"base": "none (theta = 0)", "model": f"`{s['model']}`", "oracle": "simulator success"}
    what["oracle-progress"] = "simulator progress label"
    what["oracle-distance"] = "simulator progress (unbinned)"
    what["random"] = f"`{s['random_model']}` (random)"
    for arm, res in results["arms"].items():
        per = ", ".join(f"{h['success'][-1]:.2f}" for h in res["per_seed"])
        lines.append(
            f"| {arm} | {what[arm]} | {res['final_success_mean']:.2f} ± {res['final_success_std']:.2f} | {per} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> Path:
    """Held-out success vs CEM iteration per arm (mean over seeds, band = ± std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iterations = results["settings"]["iterations"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for arm, res in results["arms"].items():
        curves = np.array([h["success"] for h in res["per_seed"]], dtype=float)
        if curves.shape[1] == 1:  # the base policy: a constant line
            curves = np.repeat(curves, iterations + 1, axis=1)
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        xs = np.arange(iterations + 1)
        (line,) = ax.plot(xs, mean, marker="o", ms=3, label=arm, ls="--" if arm == "base" else "-")
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("CEM iteration")
    ax.set_ylabel("simulator success (held-out)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{results['settings']['task']}: success vs RL iterations")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")  # the legend sits right of the axes, never over a curve
    plt.close(fig)
    return path


def main(argv: list[str] | None = None, scorers: dict[str, Any] | None = None) -> int:
    args = parse_args(argv)
    results = run(args, scorers)
    text = table(results)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
        (args.out / "table.md").write_text(text)
        plot(results, args.out / "success_vs_iterations.png")
        print(f"wrote {args.out}/results.json, table.md, success_vs_iterations.png ({results['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
