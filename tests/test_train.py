"""Reward-model training: collator, the tiny recipe end to end, QLoRA on the CPU, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from train_helpers import write_fixture_dataset

from roboreward.dataset import DatasetFormatError
from roboreward.sampling import FrameSampling
from roboreward.training import (
    IGNORE_INDEX,
    RecipeError,
    RewardCollator,
    load_examples,
    overrides_to_argv,
    parse_args,
    resolve_accumulation,
    run,
)
from roboreward.video import VideoDecodeError

TINY = "recipes/tiny/sft/config_tiny.yaml"
TINY_QLORA = "recipes/tiny/sft/config_tiny_qlora.yaml"
SAMPLING = FrameSampling(fps=2.0, max_frames=4, min_frames=2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Train 6 / validation 4 examples, plus one corrupt mp4 in train (skipped mid-epoch, not a crash)."""
    root = write_fixture_dataset(tmp_path_factory.mktemp("ds"), n_train=6, n_val=4)
    (root / "train" / "bridge" / "corrupt.mp4").write_bytes(b"not an mp4 at all")
    with open(root / "train" / "metadata.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"file_name": "bridge/corrupt.mp4", "task": "stack the cups", "reward": 2}) + "\n")
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, monkeypatch_module):
    """Point the tiny: model cache at a per-module folder."""
    cache = tmp_path_factory.mktemp("rr-cache")
    monkeypatch_module.setenv("ROBOREWARD_CACHE", str(cache))
    from roboreward.scoring.tiny import tiny_model_dir

    return tiny_model_dir("qwen3_vl")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def trained(dataset, tiny_model, tmp_path_factory) -> Path:
    """The tiny recipe, shortened: 4 steps, evaluation and a checkpoint every 2."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    args = ["--config", TINY, "--dataset_name", str(dataset), "--output_dir", str(out)]
    run(args + ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "1"])
    return out


def _collator(tiny_qwen3_vl, **kw):
    from roboreward.scoring.vlm import load_model, model_family

    model, processor = load_model(tiny_qwen3_vl)
    return model, RewardCollator(processor, model_family(model.config), SAMPLING, **kw)


# ---------------------------------------------------------------------------------------------------------------
# Collator
# ---------------------------------------------------------------------------------------------------------------
def test_collator_masks_all_but_the_answer_digit_and_loss_goes_down(tiny_qwen3_vl, dataset):
    import torch

    model, coll = _collator(tiny_qwen3_vl)
    rows = load_examples(dataset, "validation")
    batch = coll(rows)
    labels = batch["labels"]
    assert labels.shape == batch["input_ids"].shape
    assert ((labels != IGNORE_INDEX).sum(-1) == 1).all()
    # the one label is the reward's digit, last in every (left-padded) row
    assert labels[:, -1].tolist() == [coll.score_ids[r.reward - 1] for r in rows]
    assert batch["attention_mask"][:, -1].all() and (batch["attention_mask"][:, 0] == 0).any()

    torch.manual_seed(0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    losses = []
    fixed = coll(rows[:2])
    fwd = {k: v for k, v in fixed.items() if k != "labels"}
    for _ in range(5):  # the trainer's loss: the answer digit's cross-entropy from the last two positions
        logits = model(**fwd, logits_to_keep=2).logits[:, 0]
        loss = torch.nn.functional.cross_entropy(logits, fixed["labels"][:, -1])
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


def test_collator_skips_undecodable_videos_and_refills(tiny_qwen3_vl, dataset, tmp_path):
    rows = load_examples(dataset, "validation")
    bad = {"video_path": str(dataset / "train" / "bridge" / "corrupt.mp4"), "task": "stack the cups", "reward": 2}
    log = tmp_path / "skips.jsonl"
    _, coll = _collator(tiny_qwen3_vl, skip_log=log, fallback=rows[:1])
    assert coll([rows[0], bad])["input_ids"].shape[0] == 1  # dropped from its batch
    assert coll([bad, bad])["input_ids"].shape[0] == 1  # refilled from the fallback
    assert coll.skipped == 3
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 3 and all("corrupt.mp4" in x["video_path"] for x in lines)
    _, no_fallback = _collator(tiny_qwen3_vl)
    with pytest.raises(VideoDecodeError, match="every video of a batch"):
        no_fallback([bad])


def test_collator_rejects_bad_labels_and_missing_columns(tiny_qwen3_vl, dataset):
    row = load_examples(dataset, "validation")[0]
    _, coll = _collator(tiny_qwen3_vl)
    with pytest.raises(ValueError, match="outside 1..5"):
        coll([dataclasses.replace(row, reward=7)])
    with pytest.raises(KeyError, match="missing column"):
        coll([{"video_path": row.video_path, "reward": 3}])


# ---------------------------------------------------------------------------------------------------------------
# Bad input before training
# ---------------------------------------------------------------------------------------------------------------
def test_bad_datasets_are_refused_with_file_and_field(tmp_path):
    root = write_fixture_dataset(tmp_path / "ds", n_train=2, n_val=1)
    meta = root / "train" / "metadata.jsonl"
    good = meta.read_text().splitlines()
    meta.write_text(good[0] + "\n" + json.dumps({"file_name": "bridge/ep001.mp4", "task": "x", "reward": 9}) + "\n")
    with pytest.raises(DatasetFormatError, match=r"metadata.jsonl:2: reward.*outside 1..5"):
        load_examples(root, "train")
    meta.write_text(json.dumps({"file_name": "bridge/ep001.mp4", "reward": 3}) + "\n")
    with pytest.raises(DatasetFormatError, match=r"missing required column\(s\) \['task'\]"):
        load_examples(root, "train")


def test_recipe_with_unknown_keys_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(TINY).read_text() + "learning_rat: 0.1\nfoo_bar: 1\n")
    with pytest.raises(
        RecipeError,
        match=r"bad.yaml: unknown recipe key\(s\): 'foo_bar', 'learning_rat' \(did you mean 'learning_rate'\?\)",
    ):
        parse_args(["--config", str(bad)])
    with pytest.raises(RecipeError, match="recipe not found"):
        parse_args(["--config", str(tmp_path / "nope.yaml")])


def test_effective_batch_and_overrides():
    script, training, _ = parse_args(["--config", TINY, "--per_device_train_batch_size", "4"])
    assert resolve_accumulation(training, 64, 2) == 8 and training.gradient_accumulation_steps == 8
    with pytest.raises(RecipeError, match="not a multiple"):
        resolve_accumulation(training, 64, 3)
    assert overrides_to_argv(["max_steps=3", "--seed", "5"]) == ["--max_steps", "3", "--seed", "5"]
    with pytest.raises(RecipeError, match="key=value"):
        overrides_to_argv(["oops"])


def test_cli_reports_recipe_errors(tmp_path):
    from typer.testing import CliRunner

    from roboreward.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name_or_path: tiny:qwen3_vl\nnot_a_key: 1\n")
    result = CliRunner().invoke(app, ["train", "--config", str(bad)])
    assert result.exit_code == 2
    assert "unknown recipe key(s): 'not_a_key'" in result.output


def test_misspelt_overrides_are_refused_never_prefix_matched(tmp_path):
    """argparse would take ``--learning_rat`` for ``--learning_rate`` (prefix match): the parser refuses it."""
    from typer.testing import CliRunner

    from roboreward.cli import app

    for argv in (["--learning_rat", "1"], ["--learning_rat=1"], overrides_to_argv(["learning_rat=1"])):
        hint = r"command line: unknown recipe key\(s\): 'learning_rat' \(did you mean 'learning_rate'\?\)"
        with pytest.raises(RecipeError, match=hint):
            parse_args(["--config", TINY, *argv])
    with pytest.raises(RecipeError, match=r"'max_step' \(did you mean 'max_steps'\?\)"):
        parse_args(["--config", TINY, "--max_step", "3"])
    with pytest.raises(RecipeError, match="unexpected argument"):
        parse_args(["--config", TINY, "stray"])
    result = CliRunner().invoke(app, ["train", "--config", TINY, "learning_rat=1", f"output_dir={tmp_path}"])
    assert result.exit_code == 2 and "did you mean 'learning_rate'" in result.output
    assert not list(tmp_path.iterdir())  # nothing trained
    # a correct key still parses, with its value
    _, training, _ = parse_args(["--config", TINY, *overrides_to_argv(["learning_rate=0.5", "use_cpu=true"])])
    assert training.learning_rate == 0.5


def test_argument_classes_are_plain_importable_classes():
    from trl import ModelConfig, ScriptArguments, SFTTrainer

    from roboreward.training import RewardModelConfig, RewardScriptArguments, RewardSFTTrainer

    assert issubclass(RewardSFTTrainer, SFTTrainer) and RewardSFTTrainer.__module__ == "roboreward.training.trainer"
    assert issubclass(RewardScriptArguments, ScriptArguments) and issubclass(RewardModelConfig, ModelConfig)
    script, _, _ = parse_args(["--config", TINY])
    assert isinstance(script, RewardScriptArguments)
    assert script.sampling() == FrameSampling(fps=2.0, max_frames=4, min_frames=2)


def test_missing_dataset_fails_before_the_model_loads(tmp_path, monkeypatch):
    """The tiny recipe's default data/sample, absent: one clear error, raised before any model is built."""
    from roboreward.scoring import vlm

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the dataset was checked")

    monkeypatch.setattr(vlm, "load_model", no_model)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hint = r"dataset_name 'data/sample': no such folder.*roboreward build --source sample"
    with pytest.raises(RecipeError, match=hint):
        run(["--config", str(Path(__file__).resolve().parent.parent / TINY), "--output_dir", str(tmp_path / "o")])


# ---------------------------------------------------------------------------------------------------------------
# The tiny recipe end to end, and reloading the best checkpoint through the scoring API
# ---------------------------------------------------------------------------------------------------------------
def test_tiny_recipe_trains_selects_by_mae_and_saves(trained, dataset):
    info = json.loads((trained / "run_info.json").read_text())
    assert (trained / "model.safetensors").is_file() and (trained / "processor_config.json").is_file()
    assert not list(trained.glob("*.bin")) and not list(trained.glob("*.pt*"))
    # evaluated at steps 2 and 4; the kept checkpoint has the lowest MAE of the two
    history = info["eval_history"]
    assert [h["step"] for h in history] == [2, 4]
    best = min(history, key=lambda h: h["eval_mae"])
    assert info["best_metric"] == pytest.approx(best["eval_mae"])
    assert info["best_checkpoint"].endswith(f"checkpoint-{best['step']}")
    assert info["eval_metrics"]["eval_mae"] == pytest.approx(best["eval_mae"])
    # the corrupt video was skipped, counted, logged and saved
    assert info["skipped_videos"] >= 1
    assert "corrupt.mp4" in (trained / "skipped_videos.jsonl").read_text()
    assert info["hyperparameters"]["effective_batch_size"] == 2
    assert info["video_sampling"] == {"fps": 2.0, "num_frames": None, "max_frames": 4, "min_frames": 2}
    # the model card carries the run's data
    card = (trained / "README.md").read_text()
    assert "base_model: tiny:qwen3_vl" in card and "Perfect Completion" in card
    assert "Task: <instruction>" in card and "ANSWER: <score>" in card
    assert f"**Validation MAE: {best['eval_mae']:.4g}**" in card
    assert "2.0 frames per second, clamped to 2..4 frames" in card and "$" not in card.replace("$ ", "")


def test_best_checkpoint_reloads_and_scores_like_training_eval(trained, dataset):
    """The saved model, scored through the public API with the run's sampling, reproduces the eval MAE."""
    from roboreward.evaluation.metrics import mae
    from roboreward.scoring import RewardModel

    info = json.loads((trained / "run_info.json").read_text())
    s = info["video_sampling"]
    rm = RewardModel(trained, fps=s["fps"], max_frames=s["max_frames"], min_frames=s["min_frames"], batch_size=4)
    rows = load_examples(dataset, "validation")
    outs = rm.score_batch([r.video_path for r in rows], [r.task for r in rows])
    for o in outs:
        assert np.isclose(sum(o.probs), 1.0, atol=1e-5) and 1 <= o.score <= 5
    assert mae([o.score for o in outs], [r.reward for r in rows]) == pytest.approx(info["eval_metrics"]["eval_mae"])


def test_qlora_tiny_recipe_trains_on_cpu_and_merges(dataset, tiny_model, tmp_path):
    from safetensors import safe_open

    from roboreward.scoring import RewardModel

    out = tmp_path / "qlora"
    info = run(
        ["--config", TINY_QLORA, "--dataset_name", str(dataset), "--output_dir", str(out)]
        + ["--max_steps", "2", "--eval_steps", "2", "--save_steps", "2", "--max_eval_samples", "2"]
    )
    assert info["quantization"]["bnb_4bit_quant_type"] == "nf4" and info["quantization"]["bnb_4bit_use_double_quant"]
    assert info["quantization"]["llm_int8_skip_modules"] == ["model.visual", "lm_head"]
    adapter = out / "adapter" / "adapter_model.safetensors"
    with safe_open(str(adapter), "pt") as f:
        keys = list(f.keys())
    assert keys and all("language_model" in k and "visual" not in k for k in keys)
    assert {k.split(".")[-3] for k in keys if "lora_A" in k} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert "eval_mae" in info["eval_metrics"] and (out / "README.md").is_file()
    # the merged model is a plain safetensors checkpoint the scoring API loads
    out_score = RewardModel(out, fps=2.0, max_frames=4, min_frames=2).score(
        load_examples(dataset, "validation")[0].video_path, "open the top drawer"
    )
    assert 1 <= out_score.score <= 5


def test_model_card_header_and_snippet_run_as_written(trained, dataset, tmp_path, monkeypatch, capsys):
    """The card's YAML header parses (huggingface_hub), carries model-index; the usage snippet runs offline as
    copied: no absolute path, no ``null``, no enum reprs, the model found by its id."""
    import re
    import shutil

    from huggingface_hub import ModelCard

    text = (trained / "README.md").read_text()
    card = ModelCard(text)
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["base_model"] == "tiny:qwen3_vl"
    assert data["pipeline_tag"] == "video-text-to-text" and data["library_name"] == "transformers"
    info = json.loads((trained / "run_info.json").read_text())
    mae = next(r for r in card.data.eval_results if r.metric_type == "mae")
    assert mae.metric_value == pytest.approx(info["eval_metrics"]["eval_mae"], abs=1e-4)
    assert mae.dataset_split == "validation" and mae.dataset_name == dataset.name
    assert "null" not in text and "SchedulerType." not in text and "OptimizerNames." not in text
    assert str(tmp_path.parent.parent) not in text and str(trained.parent) not in text
    assert "| lr_scheduler_type | linear |" in text
    snippet = re.search(r"## Usage.*?```python\n(.*?)```", text, re.S).group(1)
    assert 'RewardModel("tiny", fps=2.0, max_frames=4, min_frames=2)' in snippet
    work = tmp_path / "work"
    work.mkdir()
    (work / "tiny").symlink_to(trained, target_is_directory=True)
    shutil.copy(load_examples(dataset, "validation")[0].video_path, work / "episode.mp4")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exec(compile(snippet, "model_card_usage", "exec"), {"__name__": "__main__"})
    score, *_ = capsys.readouterr().out.split()
    assert 1 <= int(score) <= 5


def test_no_trainer_card_and_checkpoint_paths_are_relative(trained):
    info = json.loads((trained / "run_info.json").read_text())
    assert info["best_checkpoint"] == Path(info["best_checkpoint"]).name  # "checkpoint-2", not an absolute path
    for ckpt in trained.glob("checkpoint-*"):
        assert not (ckpt / "README.md").exists()
    assert "roboreward" in (trained / "README.md").read_text().split("---")[1]  # our card's tags


class RecordingHfApi:
    """Stands in for ``huggingface_hub.HfApi``: records the repo creation and the one commit (offline)."""

    def __init__(self) -> None:
        self.repos: list[dict] = []
        self.commits: list[dict] = []
        self.branches: list[dict] = []

    def create_repo(self, repo_id, **kwargs):
        self.repos.append({"repo_id": repo_id, **kwargs})

    def create_branch(self, repo_id, **kwargs):
        self.branches.append({"repo_id": repo_id, **kwargs})

    def create_commit(self, repo_id, operations, **kwargs):
        self.commits.append({"repo_id": repo_id, "operations": list(operations), **kwargs})
        return "commit-url"


def test_push_uploads_the_folder_and_our_card_with_eval_results(trained, dataset, tmp_path):
    """One commit: the model files, run_info.json and our card rendered for the repo id, with the `roboreward eval`
    results in model-index; never a checkpoint, a pickle or Trainer's card."""
    from huggingface_hub import ModelCard

    from roboreward.evaluation import evaluate_models
    from roboreward.training import eval_results_from_leaderboard, push_model

    evaluate_models(
        [f"mine={trained}"],
        dataset=dataset,
        split="validation",
        out_dir=tmp_path / "eval",
        fps=2.0,
        max_frames=4,
        scorer_kwargs={"min_frames": 2},
        show_progress=False,
    )
    board = json.loads((tmp_path / "eval" / "leaderboard.json").read_text())
    local_card = (trained / "README.md").read_text()
    api = RecordingHfApi()
    pushed = push_model(
        trained,
        "me/roboreward-tiny",
        eval_results=eval_results_from_leaderboard(tmp_path / "eval"),
        revision="v1",
        api=api,
    )
    assert api.branches == [{"repo_id": "me/roboreward-tiny", "branch": "v1", "exist_ok": True, "token": None}]
    assert api.repos == [{"repo_id": "me/roboreward-tiny", "private": None, "exist_ok": True, "token": None}]
    (commit,) = api.commits
    assert commit["revision"] == "v1"
    files = sorted(op.path_in_repo for op in commit["operations"])
    assert files == sorted(pushed["files"])
    assert {"model.safetensors", "config.json", "processor_config.json", "run_info.json", "README.md"} <= set(files)
    assert not [f for f in files if f.startswith(("checkpoint-", "runs/")) or f.endswith((".bin", ".pt", ".pth"))]
    assert files.count("README.md") == 1
    card_op = next(op for op in commit["operations"] if op.path_in_repo == "README.md")
    card = ModelCard(card_op.path_or_fileobj.decode())
    assert 'RewardModel("me/roboreward-tiny", fps=2.0' in card.text
    assert card.data.model_name == "roboreward-tiny" and card.data.license == "apache-2.0"
    assert card.data.base_model is None and "`tiny:qwen3_vl`" in card.text  # the Hub takes only repo ids there
    (mae,) = [r for r in card.data.eval_results if r.metric_type == "mae"]  # eval's replaces the run's own
    assert mae.metric_value == pytest.approx(board["models"][0]["mae"], abs=1e-4) and mae.dataset_split == "validation"
    assert mae.dataset_name == dataset.name
    # the run's own validation metrics that eval does not report stay
    assert any(r.metric_type == "mae_expected" for r in card.data.eval_results)
    assert (trained / "README.md").read_text() == local_card  # the local card is left as it is


def test_push_command_dry_run_and_errors(trained, tmp_path):
    from typer.testing import CliRunner

    from roboreward.cli import app

    result = CliRunner().invoke(app, ["push", str(trained), "me/tiny-rm", "--dry-run"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("---", 1)[0].split()
    assert "model.safetensors" in listed and "README.md" in listed and not [f for f in listed if "checkpoint" in f]
    assert 'RewardModel("me/tiny-rm"' in result.output
    result = CliRunner().invoke(app, ["push", str(tmp_path), "me/tiny-rm", "--dry-run"])
    assert result.exit_code == 2 and "run_info.json not found" in result.output
    bad = tmp_path / "leaderboard.json"
    bad.write_text(json.dumps({"dataset": "d", "split": "test", "models": [{"model": "a"}, {"model": "b"}]}))
    result = CliRunner().invoke(app, ["push", str(trained), "me/tiny-rm", "--dry-run", "--eval-results", str(bad)])
    assert result.exit_code == 2 and "choose one (--eval-model)" in result.output


# ---------------------------------------------------------------------------------------------------------------
# It learns: a visually obvious label, a few steps, validation MAE far below the majority baseline
# ---------------------------------------------------------------------------------------------------------------
def test_tiny_model_learns_an_obvious_visual_label(tiny_model, tmp_path):
    """Bright final frames = 5, dark = 1, instructions uninformative. A few steps of the real recipe bring validation
    MAE far below the constant majority baseline, and the saved model scored through the public API (prompt without
    the answer, last-position logits) agrees with the training-time evaluation, down to E[score].

    Wrong collator labels or a loss read at the wrong position leave MAE at the baseline; a metric reading the
    logits at the answer token itself (which sees the answer) changes E[score] away from the API's."""
    from train_helpers import write_brightness_dataset

    from roboreward.scoring import RewardModel

    root = write_brightness_dataset(tmp_path / "ds", n_train=16, n_val=8)
    out = tmp_path / "run"
    info = run(
        ["--config", TINY, "--dataset_name", str(root), "--output_dir", str(out), "--max_steps", "6"]
        + ["--per_device_train_batch_size", "4", "--eval_steps", "6", "--save_strategy", "no"]
        + ["--load_best_model_at_end", "false", "--logging_steps", "6", "--disable_tqdm", "true"]
    )
    train_refs = np.array([r.reward for r in load_examples(root, "train")])
    val = load_examples(root, "validation")
    refs = np.array([r.reward for r in val])
    majority = np.bincount(train_refs).argmax()
    baseline = float(np.abs(refs - majority).mean())
    assert baseline == 2.0
    assert info["eval_metrics"]["eval_mae"] <= 0.25 * baseline, info["eval_metrics"]

    rm = RewardModel(out, fps=2.0, max_frames=4, min_frames=2, batch_size=4)
    outs = rm.score_batch([r.video_path for r in val], [r.task for r in val])
    assert np.abs(np.array([o.score for o in outs]) - refs).mean() == pytest.approx(info["eval_metrics"]["eval_mae"])
    expected_mae = float(np.abs(np.array([o.expected for o in outs]) - refs).mean())
    assert expected_mae == pytest.approx(info["eval_metrics"]["eval_mae_expected"], abs=1e-3)


def test_push_to_hub_recipe_pushes_our_card_after_training(dataset, tiny_model, tmp_path, monkeypatch):
    """``push_to_hub: true``: Trainer's own push is off (offline it would fail creating the repo at start), and the
    finished folder goes up once, after our card is written, with the card rendered for hub_model_id."""
    from roboreward.training import hub

    api = RecordingHfApi()
    monkeypatch.setattr(hub, "HfApi", lambda token=None: api)
    out = tmp_path / "pushed"
    run(
        ["--config", TINY, "--dataset_name", str(dataset), "--output_dir", str(out), "--max_steps", "1"]
        + ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]
        + ["--push_to_hub", "true", "--hub_model_id", "me/tiny-pushed"]
    )
    (commit,) = api.commits
    assert commit["repo_id"] == "me/tiny-pushed" and api.repos[0]["repo_id"] == "me/tiny-pushed"
    card = next(op for op in commit["operations"] if op.path_in_repo == "README.md").path_or_fileobj.decode()
    assert 'RewardModel("me/tiny-pushed"' in card and "- roboreward" in card
    assert json.loads((out / "run_info.json").read_text())["model_id"] == "me/tiny-pushed"
