"""The Meta-World reward-data generator's instruction wordings (docs/reward_quality.md, issue 17): training
sessions take one of several wordings per task, evaluation sessions a held-out one that training never sees."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import load_module

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _generator():
    return load_module(SCRIPTS / "make_metaworld_reward_data.py")


def test_training_wordings_never_include_the_held_out_paraphrases():
    gen = _generator()
    tasks = [t[2] for t in gen.TASKS]
    assert sorted(gen.TRAIN_WORDINGS) == sorted(tasks) == sorted(gen.PARAPHRASES)
    held_out = set(gen.PARAPHRASES.values())
    for instruction, options in gen.TRAIN_WORDINGS.items():
        assert options[0] == instruction  # the bundled sample's wording is one of them
        assert len(set(options)) == len(options) >= 3 and not held_out & set(options)
    assert gen.wording("open the drawer", 3, paraphrase=True) == "pull the drawer out"
    assert {gen.wording("open the drawer", s, paraphrase=False) for s in range(64)} == set(
        gen.TRAIN_WORDINGS["open the drawer"]
    )


def test_the_wording_does_not_tell_the_policy():
    """A session's variants follow ``s % len(VARIANTS)``; its wording must not (with ``seed % 8`` it did, and a model
    read the policy, so the label, off the instruction)."""
    gen = _generator()
    options = gen.TRAIN_WORDINGS["open the drawer"]
    for offset in (0, 10000, 20000):
        for v in range(len(gen.VARIANTS)):
            seeds = [offset + 1000 + s for s in range(800) if s % len(gen.VARIANTS) == v]
            used = {gen.wording("open the drawer", seed, paraphrase=False) for seed in seeds}
            assert used == set(options), (offset, v)


def test_reword_existing_rewrites_instructions_and_keeps_everything_else(tmp_path: Path):
    gen = _generator()
    sdir = tmp_path / "evaluation_sessions" / "drawer-open-v3_001001"
    (sdir / "A_scripted_expert").mkdir(parents=True)
    video = sdir / "A_scripted_expert" / "left_shoulder.mp4"
    video.write_bytes(b"not touched")
    meta = {
        "session_id": sdir.name,
        "language_instruction": "open the drawer",
        "environment": "drawer-open-v3",
        "policies": {"A": {"policy_name": "scripted_expert", "partial_success": 1.0}},
    }
    (sdir / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    row = {"session": sdir.name, "side": "A", "seed": 1001, "success": True, "instruction": "open the drawer"}
    (sdir / "episodes.jsonl").write_text(json.dumps(row) + "\n")

    assert gen.reword_existing(tmp_path) == 1
    expected = gen.wording("open the drawer", 1001, paraphrase=False)
    assert yaml.safe_load((sdir / "metadata.yaml").read_text())["language_instruction"] == expected
    rows = [json.loads(x) for x in (tmp_path / "meta.jsonl").read_text().splitlines()]
    assert rows == [dict(row, instruction=expected)] and video.read_bytes() == b"not touched"
    assert gen.reword_existing(tmp_path) == 0  # idempotent
