"""Evaluate reward models on fresh Meta-World episodes against baselines (docs/reward_quality.md, issue 17).

Each ``--data`` folder is made by ``scripts/make_metaworld_reward_data.py`` (new seeds, held-out instruction
wordings, any frame size); it is built into a test-only dataset of whole episodes (no clips) with our own
``build_dataset`` (into ``<data>_dataset`` beside it), then every ``--model`` scores it, and so do three baselines:

* ``majority`` — the constant most frequent label of ``--train-dataset``'s train split, whole episodes only (its
  temporal clips are labelled 1-2 by construction and would make the constant a strawman);
* ``best constant`` — the median of the evaluated labels themselves, the constant with the lowest possible MAE;
* ``simulator success`` — 5 when Meta-World reports success, else 1 (what a success detector would say);
* any ``--model`` spec (``metaworld``, ``tiny`` for the random model, a folder, an API spec).

Reported per data folder and model: MAE against the 1-5 labels, exact accuracy, success ROC-AUC of E[score]
against the simulator's success flag, and Spearman of E[score] with the simulator's progress. Writes
``<out>/reward_quality.json`` and ``<out>/reward_quality.md``::

    python scripts/eval_metaworld_reward.py --data data/metaworld/test_160x120 --data data/metaworld/test_160x160 \
        --train-dataset data/metaworld/dataset --model metaworld --model tiny --out runs/metaworld-eval
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

import numpy as np


def _built(data: Path) -> Path:
    from roboreward.dataset import build_dataset

    out = data.parent / f"{data.name}_dataset"  # beside the source: a build never writes inside its source
    if not (out / "test" / "metadata.jsonl").is_file():
        build_dataset([f"roboarena:{data}"], out, clip_fractions="none", split_fractions="0,0,1", show_progress=False)
    return out


def _simulator(data: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in (data / "meta.jsonl").read_text().splitlines() if line.strip()]
    return {f"{r['session']}_{r['side']}": r for r in rows}


def _metrics(values: np.ndarray, scores: np.ndarray, labels: np.ndarray, sim: list[dict]) -> dict[str, Any]:
    from roboreward.evaluation.correlation import roc_auc
    from roboreward.evaluation.metrics import accuracy, mae, spearman

    success = np.array([float(s["success"]) for s in sim])
    progress = np.array([float(s["progress"]) for s in sim])
    return {
        "mae": mae(scores.tolist(), labels.tolist()),
        "accuracy": accuracy(scores.tolist(), labels.tolist()),
        "success_roc_auc": roc_auc(values, success),
        "spearman_progress": spearman(values, progress),
    }


def evaluate(data: Path, models: list[str], majority: int, batch_size: int = 8) -> dict[str, Any]:
    from roboreward.dataset import read_split
    from roboreward.scoring import load_scorer

    rows = read_split(_built(data), "test")
    sim_by_id = _simulator(data)
    sim = [sim_by_id[r.episode_id] for r in rows]
    labels = np.array([r.reward for r in rows], dtype=float)
    results: dict[str, Any] = {}
    const = np.full(len(rows), float(majority))
    results[f"majority ({majority})"] = _metrics(const, const, labels, sim)
    best = float(np.median(labels).round())
    best_const = np.full(len(rows), best)
    results[f"best constant ({best:g})"] = _metrics(best_const, best_const, labels, sim)
    detector = np.array([5.0 if s["success"] else 1.0 for s in sim])
    results["simulator success"] = _metrics(detector, detector, labels, sim)
    for spec in models:
        scorer = load_scorer(spec)
        outs = []
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            outs += scorer.score_batch([str(r.video_path) for r in chunk], [r.task for r in chunk])
        values = np.array([o.value for o in outs], dtype=float)
        scores = np.array([o.score for o in outs], dtype=float)
        results[spec] = _metrics(values, scores, labels, sim)
        envs = np.array([s["env"] for s in sim])
        per_task = {}
        for env in sorted(set(envs)):
            idx = np.flatnonzero(envs == env)
            per_task[env] = _metrics(values[idx], scores[idx], labels[idx], [sim[i] for i in idx])
        results[spec]["per_task"] = per_task
    labels_count = collections.Counter(int(v) for v in labels)
    return {"episodes": len(rows), "labels": dict(sorted(labels_count.items())), "results": results}


def markdown(report: dict[str, Any]) -> str:
    lines = []
    for data, r in report["data"].items():
        lines += [
            f"**{data}** — {r['episodes']} episodes, labels {r['labels']}",
            "",
            "| model | MAE | accuracy | success ROC-AUC | Spearman (progress) |",
            "|---|---|---|---|---|",
        ]
        for name, m in r["results"].items():
            cells = [m["mae"], m["accuracy"], m["success_roc_auc"], m["spearman_progress"]]
            lines.append(f"| {name} | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells) + " |")
        lines.append("")
        for name, m in r["results"].items():
            if "per_task" in m:
                cells = [f"{env} {t['mae']:.2f} / {_fmt(t['success_roc_auc'])}" for env, t in m["per_task"].items()]
                lines += [f"{name}, per task (MAE / success ROC-AUC): " + "; ".join(cells), ""]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument(
        "--train-dataset", type=Path, required=True, help="built dataset whose train labels give the majority"
    )
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("runs/metaworld-eval"))
    args = ap.parse_args()
    from roboreward.dataset import read_split

    rows = read_split(args.train_dataset, "train", check_files=False)
    train = collections.Counter(r.reward for r in rows if r.kind == "original")
    majority = train.most_common(1)[0][0]
    report = {
        "majority_label": majority,
        "train_labels": dict(sorted(train.items())),
        "data": {str(d): evaluate(d, args.model, majority) for d in args.data},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reward_quality.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "reward_quality.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
