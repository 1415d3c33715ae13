"""Benchmark runner: a small dataset in the released layout, a real tiny Qwen3-VL and fake scorers; resume after
interruption, failures, truncated files, settings changes; the leaderboard files; the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import make_frames

from roboreward.evaluation import EvaluationError, evaluate_models, metrics, read_predictions
from roboreward.types import RewardOutput
from roboreward.video import VideoDecodeError, write_video

EXAMPLES = [  # (file_name, task, reward); a video appears with two instructions, as relabeled rows do
    ("bridge/ep0.mp4", "put the spoon in the pot", 5),
    ("bridge/ep0.mp4", "put the spoon on the towel", 2),
    ("bridge/ep1_attempt_0_score_3.mp4", "open the drawer", 3),
    ("robo_arena/a/ep2.mp4", "stack the cups", 1),
    ("robo_arena/a/ep3.mp4", "wipe the table", 4),
    ("robo_arena/b/ep4.mp4", "close the laptop", 5),
    ("viola/ep5.mp4", "pick up the cup", 2),
]
N = len(EXAMPLES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("released")
    split = root / "test"
    for i, (name, _, _) in enumerate(EXAMPLES):
        if not (split / name).exists():
            write_video(split / name, make_frames(6, 32, 48, seed=i), fps=10)
    with open(split / "metadata.jsonl", "w") as fh:
        for name, task, reward in EXAMPLES:
            fh.write(json.dumps({"file_name": name, "task": task, "reward": reward, "gpt5_mini_check": "ok"}) + "\n")
    (root / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n---\n")
    return root


class FakeScorer:
    """Deterministic scores from the instruction; counts what it scored; can fail on demand."""

    def __init__(self, name="fake", offset=0, interrupt_after=None, fail_on=(), settings=None):
        self.name = name
        self.offset = offset
        self.interrupt_after = interrupt_after
        self.fail_on = set(fail_on)
        self.calls: list[str] = []
        if settings is not None:
            self.settings = settings

    def score(self, video, instruction):
        return self.score_batch([video], [instruction])[0]

    def score_batch(self, videos, instructions):
        outs = []
        for v, t in zip(videos, instructions, strict=True):
            if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
                raise KeyboardInterrupt  # a Ctrl-C / kill in the middle of a batch
            if Path(v).name in self.fail_on:
                raise VideoDecodeError(f"{v}: cannot decode video (broken)")
            self.calls.append(t)
            s = 1 + (len(t) + self.offset) % 5
            outs.append(RewardOutput(score=s, probs=None, expected=float(s)))
        return outs


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_runner_tiny_model_and_fake_writes_all_files(dataset, tmp_path, tiny_qwen3_vl):
    out = tmp_path / "results"
    fake = FakeScorer()
    result = evaluate_models(
        [f"tiny={tiny_qwen3_vl}", fake], dataset=dataset, out_dir=out, max_frames=4, batch_size=3, show_progress=False
    )
    names = {r["model"] for r in result.leaderboard}
    assert names == {"tiny", "fake"}
    for name in ("tiny", "fake"):
        rows = _lines(out / "predictions" / f"{name}.jsonl")
        assert len(rows) == N and len({r["key"] for r in rows}) == N
        assert all(r["max_frames"] == 4 and r["fps"] == 2.0 for r in rows)  # sampling recorded in every row
        settings = json.loads((out / "predictions" / f"{name}.settings.json").read_text())
        assert settings["max_frames"] == 4 and settings["split"] == "test"
    tiny_rows = _lines(out / "predictions" / "tiny.jsonl")
    assert all(abs(sum(r["probs"]) - 1) < 1e-6 and r["score"] in range(1, 6) for r in tiny_rows)
    assert {r["subset"] for r in tiny_rows} == {"bridge", "robo_arena", "viola"}

    # leaderboard numbers are the metric's on the stored predictions
    refs = [r for _, _, r in EXAMPLES]
    subsets = [n.split("/")[0] for n, _, _ in EXAMPLES]
    by_model = {row["model"]: row for row in result.leaderboard}
    preds = {m: [r["score"] for r in _lines(out / "predictions" / f"{m}.jsonl")] for m in ("tiny", "fake")}
    expect = metrics.leaderboard(preds, refs, subsets)
    for e in expect:
        for key in ("mae", "macro_mae", "accuracy", "instance_win_rate", "subset_win_rate"):
            assert by_model[e["model"]][key] == pytest.approx(e[key])
    assert result.leaderboard[0]["macro_mae"] <= result.leaderboard[1]["macro_mae"]

    md = (out / "leaderboard.md").read_text()
    assert "macro MAE" in md and "| robo_arena |" in md and "tiny" in md and "fake" in md
    with open(out / "leaderboard.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["model"] for r in table] == [r["model"] for r in result.leaderboard] and "mae_viola" in table[0]
    from PIL import Image

    for png in ("leaderboard.png", "confusion_tiny.png", "confusion_fake.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] > 200


def test_resume_after_interruption_no_duplicates_no_rescoring(dataset, tmp_path):
    out = tmp_path / "results"
    first = FakeScorer(name="m", interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate_models([first], dataset=dataset, out_dir=out, batch_size=2, show_progress=False)
    path = out / "predictions" / "m.jsonl"
    assert len(_lines(path)) == 2  # the first batch was flushed; the interrupted one is not half-written
    second = FakeScorer(name="m")
    evaluate_models([second], dataset=dataset, out_dir=out, batch_size=2, show_progress=False)
    assert len(second.calls) == N - 2  # only what was missing
    rows = _lines(path)
    assert len(rows) == N and len({r["key"] for r in rows}) == N
    third = FakeScorer(name="m")
    result = evaluate_models([third], dataset=dataset, out_dir=out, show_progress=False)
    assert third.calls == [] and result.runs[0].reused == N and len(_lines(path)) == N


def test_truncated_last_line_is_repaired(dataset, tmp_path):
    out = tmp_path / "results"
    evaluate_models([FakeScorer(name="m")], dataset=dataset, out_dir=out, show_progress=False)
    path = out / "predictions" / "m.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:25])  # a kill in the middle of the last write
    again = FakeScorer(name="m")
    evaluate_models([again], dataset=dataset, out_dir=out, show_progress=False)
    assert len(again.calls) == 1
    rows = _lines(path)
    assert len(rows) == N and len({r["key"] for r in rows}) == N


def test_failures_are_recorded_and_retried(dataset, tmp_path):
    out = tmp_path / "results"
    broken = FakeScorer(name="m", fail_on={"ep3.mp4"})
    result = evaluate_models([broken, FakeScorer(name="other")], dataset=dataset, out_dir=out, show_progress=False)
    assert result.runs[0].failed == 1 and result.runs[0].scored == N - 1
    errors = _lines(out / "predictions" / "m.errors.jsonl")
    assert errors[0]["file_name"] == "robo_arena/a/ep3.mp4" and "cannot decode" in errors[0]["error"]
    assert errors[0]["kind"] == "video"
    assert all(r["n"] == N - 1 and r["missing"] == 1 for r in result.leaderboard)  # compared on common examples
    fixed = FakeScorer(name="m")
    result = evaluate_models([fixed, FakeScorer(name="other")], dataset=dataset, out_dir=out, show_progress=False)
    assert fixed.calls == ["wipe the table"] and not (out / "predictions" / "m.errors.jsonl").exists()
    assert all(r["n"] == N and r["missing"] == 0 for r in result.leaderboard)


def test_scorer_that_keeps_failing_stops_with_clear_error(dataset, tmp_path):
    class Dead(FakeScorer):
        def score_batch(self, videos, instructions):
            raise ConnectionError("server unreachable")

    from roboreward import evaluation

    with pytest.raises(EvaluationError, match="in a row failed.*server unreachable"):
        evaluation.score_split(
            Dead(name="dead"),
            *_rows_keys(dataset),
            tmp_path / "dead.jsonl",
            max_consecutive_failures=3,
            show_progress=False,
        )


def _rows_keys(dataset):
    from roboreward.dataset import read_split
    from roboreward.evaluation import example_keys

    rows = read_split(dataset, "test")
    return rows, example_keys(rows)


def test_settings_change_and_complete_models_not_reloaded(dataset, tmp_path):
    out = tmp_path / "results"
    evaluate_models(
        ["a=spec-a", "b=spec-b"],
        dataset=dataset,
        out_dir=out,
        scorer_factory=lambda spec: FakeScorer(offset=len(spec)),
        show_progress=False,
    )
    assert len(read_predictions(out / "predictions" / "a.jsonl")) == N

    def must_not_load(spec):
        raise AssertionError(f"{spec} was loaded although its predictions are complete")

    result = evaluate_models(
        ["a=spec-a", "b=spec-b"], dataset=dataset, out_dir=out, scorer_factory=must_not_load, show_progress=False
    )
    assert {r.reused for r in result.runs} == {N}
    with pytest.raises(EvaluationError, match="other settings.*max_frames: 8 -> 16"):
        evaluate_models(["a=spec-a"], dataset=dataset, out_dir=out, max_frames=16, scorer_factory=must_not_load)
    with pytest.raises(ValueError, match="given twice"):
        evaluate_models(["x=a", "x=b"], dataset=dataset, out_dir=out, scorer_factory=lambda s: FakeScorer())


def test_eval_cli(dataset, tmp_path, tiny_qwen3_vl):
    from typer.testing import CliRunner

    from roboreward.cli import app

    out = tmp_path / "cli"
    args = ["eval", "--dataset", str(dataset), "--out", str(out), "--model", f"tiny={tiny_qwen3_vl}"]
    result = CliRunner().invoke(app, [*args, "--num-frames", "2", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "scored 3, reused 0" in result.output and (out / "leaderboard.md").is_file()
    rows = _lines(out / "predictions" / "tiny.jsonl")
    assert len(rows) == 3 and rows[0]["num_frames"] == 2 and rows[0]["fps"] is None
    bad = CliRunner().invoke(app, ["eval", "--dataset", str(tmp_path / "nowhere"), "--model", "tiny"])
    assert bad.exit_code == 1
    missing_split = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--split", "train", "-m", "tiny"])
    assert missing_split.exit_code == 1 and "no split 'train'" in missing_split.output


def test_runner_on_the_bundled_sample_dataset(tmp_path, tiny_qwen3_vl, tiny_qwen2_5_vl):
    """``roboreward build --source sample`` then ``roboreward eval`` on its test split: the builder's output
    (videofolder layout, several sources, temporal clips) is what eval reads."""
    from typer.testing import CliRunner

    from roboreward.cli import app
    from roboreward.dataset import read_split

    built = tmp_path / "sample"
    result = CliRunner().invoke(app, ["build", "--source", "sample", "--out", str(built)])
    assert result.exit_code == 0, result.output
    rows = read_split(built, "test")
    assert len({r.subset for r in rows}) >= 2 and len({r.reward for r in rows}) >= 3
    # the validation split is written as the release's val/ folder (and read under its name)
    assert (built / "val" / "metadata.jsonl").is_file() and not (built / "validation").exists()
    assert read_split(built, "validation")[0].video_path.is_relative_to(built / "val")
    out = tmp_path / "results"
    args = ["eval", "--dataset", str(built), "--out", str(out), "--model", f"tiny={tiny_qwen3_vl}"]
    result = CliRunner().invoke(app, [*args, "--model", f"tiny25={tiny_qwen2_5_vl}", "--num-frames", "2"])
    assert result.exit_code == 0, result.output
    assert f"scored {len(rows)}, reused 0" in result.output
    board = json.loads((out / "leaderboard.json").read_text())["models"]
    assert {m["model"] for m in board} == {"tiny", "tiny25"} and all(m["n"] == len(rows) for m in board)
    assert set(board[0]["per_subset_mae"]) == {r.subset for r in rows}
    assert all(0 <= m["subset_win_rate"] <= 1 for m in board)
    for f in ("leaderboard.md", "leaderboard.csv", "leaderboard.png", "confusion_tiny.png", "confusion_tiny25.png"):
        assert (out / f).is_file()
    # the same two tiny models under HELM's protocol (short generations: random weights never stop by themselves)
    helm_out = tmp_path / "helm"
    args = ["eval", "--dataset", str(built), "--out", str(helm_out), "--model", f"tiny={tiny_qwen3_vl}"]
    result = CliRunner().invoke(
        app, [*args, "-m", f"tiny25={tiny_qwen2_5_vl}", "--protocol", "helm", "--max-new-tokens", "3", "--limit", "6"]
    )
    assert result.exit_code == 0, result.output
    for out_dir, protocol in ((out, "roboreward"), (helm_out, "helm")):
        doc = json.loads((out_dir / "leaderboard.json").read_text())
        assert doc["protocol"]["protocol"] == protocol and {m["protocol"] for m in doc["models"]} == {protocol}
        for name in ("tiny", "tiny25"):
            assert {r["protocol"] for r in _lines(out_dir / "predictions" / f"{name}.jsonl")} == {protocol}
            settings = json.loads((out_dir / "predictions" / f"{name}.settings.json").read_text())
            assert settings["protocol"] == protocol and settings["weights_sha256"] and settings["dataset_sha256"]
        assert f"protocol: {protocol}" in (out_dir / "leaderboard.md").read_text()
    helm_rows = _lines(helm_out / "predictions" / "tiny.jsonl")
    assert all(isinstance(r["raw_text"], str) and "answer" in r for r in helm_rows)
    helm_settings = json.loads((helm_out / "predictions" / "tiny.settings.json").read_text())
    assert helm_settings["scorer"] == "HelmLocalScorer" and helm_settings["message_order"] == "text,video"
    assert helm_settings["max_new_tokens"] == 3


def test_api_model_parse_failures_count_at_max_error(dataset, tmp_path):
    from openai_server import ChatServer

    answers = {task: f"ANSWER: {reward}" for _, task, reward in EXAMPLES}
    answers["wipe the table"] = "I am not sure what happened."  # reward 4: unparseable -> error 4

    def handler(req):
        return answers[req["messages"][0]["content"][-1]["text"].rsplit("Task:", 1)[-1].strip()]

    out = tmp_path / "results"
    with ChatServer(handler) as server:
        result = evaluate_models(
            [f"api=openai:fake-vlm@{server.base_url}"], dataset=dataset, out_dir=out, max_frames=2, show_progress=False
        )
    (row,) = result.leaderboard
    assert row["parse_failures"] == 1 and row["mae"] == pytest.approx(4 / N) and row["accuracy"] == pytest.approx(6 / 7)
    stored = {r["task"]: r for r in _lines(out / "predictions" / "api.jsonl")}
    assert stored["wipe the table"]["score"] is None and stored["wipe the table"]["parsed"] is False
    assert stored["wipe the table"]["raw_text"] == "I am not sure what happened."
    settings = json.loads((out / "predictions" / "api.settings.json").read_text())
    assert settings["scorer"] == "ApiScorer" and settings["base_url"] == server.base_url


# ------------------------------------------------------------------------------------------ HELM parity (issue 16)

HELM_FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "helm_parity.json").read_text())


def test_helm_parsing_and_instance_error_match_helm_on_probe_answers():
    from roboreward.evaluation import helm
    from roboreward.rubric import parse_answer

    differ = 0
    for probe in HELM_FIXTURE["probes"]:
        got = helm.parse_answer(probe["text"])
        assert got == probe["extracted"], probe["text"]
        stats = helm.instance_stats(got, probe["reference"])
        assert stats == {k: probe[k] for k in ("abs_error", "squared_error", "exact_match")}, probe["text"]
        ours = parse_answer(probe["text"])
        differ += (float(ours) if ours is not None else None) != got
    assert len(HELM_FIXTURE["probes"]) >= 40 and differ >= 10  # the two parsers really differ (docs table)


def test_helm_aggregation_matches_helm_on_random_multi_model_predictions():
    from roboreward.evaluation import helm

    for case in HELM_FIXTURE["random"]:
        refs, subsets = case["references"], case["subsets"]
        table = {}
        for name, texts in case["models"].items():
            answers = [helm.parse_answer(t) for t in texts]
            per = helm.per_subset_stats(answers, refs, subsets, [t is not None for t in texts])
            expected = case["per_subset"][name]
            assert set(per) == set(expected)  # a subset the model never answered has no column
            for s, st in per.items():
                assert st["count"] == expected[s]["count"]
                for k in ("abs_error", "squared_error", "exact_match"):
                    assert st[k] == pytest.approx(expected[s][k], abs=1e-12)
            table[name] = {s: per.get(s, {}).get("abs_error") for s in sorted(set(subsets))}
        means, wins = helm.aggregate_row_means(table), helm.aggregate_row_win_rates(table)
        for name in table:
            assert means[name] == pytest.approx(case["mean_abs_error"][name], abs=1e-12)
            assert wins[name] == pytest.approx(case["win_rate"][name], abs=1e-12)


def test_helm_robo_arena_sample_and_1fps_frames_match_helm(tmp_path):
    from roboreward.evaluation import helm
    from roboreward.evaluation.protocols import helm_jpeg_frames

    for d in HELM_FIXTURE["downsample"]:
        assert helm.downsample_indices(d["total"], d["max_eval_instances"]) == d["picked"]
    for f in HELM_FIXTURE["frames"]:
        path = write_video(tmp_path / f"v{f['fps']}.mp4", make_frames(f["frames"], 16, 16, seed=0), fps=f["fps"])
        uris = helm_jpeg_frames(path)
        assert len(uris) == f["sampled"] and all(u.startswith("data:image/jpeg;base64,") for u in uris)
    assert helm.helm_subset_name("stanford_hydra") == "stanford_hydra_dataset_converted_externally_to_rlds"
    assert helm.helm_subset_name("utokyo_pr2_tabletop") in helm.HELM_SUBSETS and len(helm.HELM_SUBSETS) == 23


# ------------------------------------------------------------------------------- metrics peers report (issue 16)


def test_success_auc_and_correlations_against_brute_force():
    import numpy as np
    from scipy.stats import kendalltau, pearsonr

    from roboreward.evaluation import correlation

    rng = np.random.default_rng(3)
    for _ in range(20):
        refs = rng.integers(1, 6, 60)
        values = np.round(rng.uniform(1, 5, 60) * 2) / 2  # ties on purpose
        pos, neg = values[refs == 5], values[refs < 5]
        pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]) if len(pos) and len(neg) else None
        out = correlation.success_auc(values, refs)
        assert out["success_roc_auc"] == (pytest.approx(pairwise) if pairwise is not None else None)
        ap, hits = 0.0, 0
        for t in sorted(set(values), reverse=True):  # one threshold per distinct value
            at = values >= t
            new_hits = int((refs[at] == 5).sum())
            if (refs == 5).any():
                ap += (new_hits - hits) / (refs == 5).sum() * new_hits / at.sum()
            hits = new_hits
        assert out["success_auprc"] == (pytest.approx(ap) if (refs == 5).any() else None)
        c = correlation.correlations(values, refs)
        assert c["pearson"] == pytest.approx(pearsonr(values, refs).statistic)
        assert c["kendall_tau"] == pytest.approx(kendalltau(values, refs).statistic)
    assert correlation.success_auc([3, 4], [5, 5])["success_roc_auc"] is None  # one class
    assert correlation.correlations([3, 3, 3], [1, 2, 5]) == {"pearson": None, "kendall_tau": None}
    per = correlation.per_subset_correlations([1, 2, 3, 4, 4], [1, 2, 3, 5, 1], ["a", "a", "a", "b", "b"])
    assert per["a"]["pearson"] == pytest.approx(1.0) and per["b"]["pearson"] is None
    r = metrics.compute([5, 3, None], [5, 4, 1])
    assert r["mse"] == pytest.approx((0 + 1 + 16) / 3)  # a parse failure at 4^2, as HELM's squared_error


def test_preference_accuracy_within_sessions_ties_handled():
    from roboreward.evaluation.correlation import preference_accuracy

    def row(session, side, reward, task="open the drawer", **extra):
        return {"file_name": f"robo_arena/{session}_{side}.mp4", "task": task, "reward": reward,
                "episode_id": f"{session}_{side}", "kind": "original", **extra}  # fmt: skip

    rows, values = [], []
    for session, a, b, va, vb in [
        ("s1", 5, 2, 4.5, 1.2),  # ordered as the human: 1
        ("s2", 3, 3, 4.0, 1.0),  # human tie: left out
        ("s3", 4, 1, 2.0, 2.0),  # model tie: 0.5
        ("s4", 2, 5, 5.0, 1.0),  # reversed: 0
    ]:
        rows += [row(session, "A", a), row(session, "B", b)]
        values += [va, vb]
    # partial_success is finer than the binned reward: B did better although both are 3
    rows += [row("s5", "A", 3, partial_success=0.45), row("s5", "B", 3, partial_success=0.5)]
    values += [3.0, 3.5]
    rows += [row("s1", "A", 1, task="close it"), {"file_name": "bridge/x.mp4", "task": "t", "reward": 5}]
    values += [5.0, 1.0]  # a counterfactual of another task has no partner; other subsets are ignored
    out = preference_accuracy(rows, values)
    assert out == {"preference_accuracy": pytest.approx(2.5 / 4), "pairs": 4, "human_ties": 1}
    assert preference_accuracy(rows[-1:], values[-1:])["preference_accuracy"] is None


def test_voc_zero_for_short_or_near_constant_curves_as_opengvl():
    from roboreward.evaluation.correlation import mean_voc, voc

    assert voc([1.0, 2.0, 3.5]) == pytest.approx(1.0) and voc([3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert voc([2.0]) == 0.0 and voc([3.0, 3.0, 3.0 + 1e-9]) == 0.0  # np.allclose: near-constant
    assert mean_voc([[1, 2, 3], [3, 3, 3], [1, 3, 2]]) == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert mean_voc([]) is None


# ------------------------------------------------------------------------------ protocols and results identity


class TextScorer(FakeScorer):
    """Answers in text (like a generating VLM): the reward, a half point, or nonsense, by instruction."""

    def score_batch(self, videos, instructions):
        outs = []
        for v, t in zip(videos, instructions, strict=True):
            if Path(v).name in self.fail_on:
                raise ConnectionError("server down")
            self.calls.append(t)
            special = {"open the drawer": "ANSWER: 3.5", "stack the cups": "I cannot tell."}
            text = special.get(t, f"ANSWER: {len(t) % 5 + 1}")
            outs.append(RewardOutput(score=1, raw_text=text, parsed=False))
        return outs


def test_helm_protocol_aggregation_drops_per_model_and_names_its_settings(dataset, tmp_path):
    from roboreward.evaluation import helm

    out = tmp_path / "helm"
    result = evaluate_models(
        [TextScorer(name="a"), TextScorer(name="b", fail_on={"ep4.mp4"})],
        dataset=dataset, out_dir=out, protocol="helm", robo_arena_instances="all", show_progress=False,
    )  # fmt: skip
    board = {r["model"]: r for r in result.leaderboard}
    assert board["a"]["n"] == N and board["b"]["n"] == N - 1  # b's failed instance is dropped for b only
    rows = {r["task"]: r for r in _lines(out / "predictions" / "a.jsonl")}
    assert rows["open the drawer"]["answer"] == 3.5 and rows["stack the cups"]["answer"] is None
    assert all(r["protocol"] == "helm" for r in rows.values())
    refs = {task: reward for _, task, reward in EXAMPLES}
    # robo_arena for model a: "stack the cups" unparseable (4), "wipe the table" and "close the laptop" answered
    arena = [4.0, abs(len("wipe the table") % 5 + 1 - 4), abs(len("close the laptop") % 5 + 1 - 5)]
    assert board["a"]["per_subset_mae"]["robo_arena"] == pytest.approx(sum(arena) / 3)
    assert board["a"]["per_subset_mae"]["bridge"] == pytest.approx(
        (abs(len("put the spoon in the pot") % 5 + 1 - 5) + abs(len("put the spoon on the towel") % 5 + 1 - 2)
         + abs(3.5 - refs["open the drawer"])) / 3
    )  # fmt: skip
    table = {m: r["per_subset_mae"] for m, r in board.items()}
    assert board["a"]["macro_mae"] == pytest.approx(helm.aggregate_row_means(table)["a"])
    assert board["b"]["subset_win_rate"] == pytest.approx(helm.aggregate_row_win_rates(table)["b"])
    doc = json.loads((out / "leaderboard.json").read_text())
    assert doc["protocol"]["protocol"] == "helm" and doc["protocol"]["message_order"] == "text,video"
    assert doc["protocol"]["max_new_tokens"] == 5000 and doc["protocol"]["robo_arena_instances"] is None
    assert "protocol: helm" in (out / "leaderboard.md").read_text()
    with open(out / "leaderboard.csv") as fh:
        assert all(r["setting_protocol"] == "helm" and r["protocol"] == "helm" for r in csv.DictReader(fh))
    sampled = evaluate_models(
        [TextScorer(name="a")], dataset=dataset, out_dir=tmp_path / "s", protocol="helm", robo_arena_instances=1,
        show_progress=False,
    )  # fmt: skip
    arena_rows = [i for i, (n, _, _) in enumerate(EXAMPLES) if n.startswith("robo_arena")]
    assert sampled.leaderboard[0]["n"] == N - len(arena_rows) + 1  # HELM's seed-0 sample of robo_arena
    picked = [arena_rows[j] for j in helm.downsample_indices(len(arena_rows), 1)]
    assert [r["task"] for r in _lines(tmp_path / "s" / "predictions" / "a.jsonl") if r["subset"] == "robo_arena"] == [
        EXAMPLES[picked[0]][1]
    ]


def test_results_keyed_by_spec_dataset_and_every_setting(dataset, tmp_path):
    import shutil

    out = tmp_path / "results"
    factory = lambda spec: FakeScorer(offset=len(spec))  # noqa: E731
    evaluate_models(["a=spec-a"], dataset=dataset, out_dir=out, scorer_factory=factory, show_progress=False)
    settings = json.loads((out / "predictions" / "a.settings.json").read_text())
    assert settings["protocol"] == "roboreward" and settings["spec"] == "spec-a" and settings["dataset_sha256"]
    with pytest.raises(EvaluationError, match="spec: spec-a -> spec-b"):  # same name, another model
        evaluate_models(["a=spec-b"], dataset=dataset, out_dir=out, scorer_factory=factory, show_progress=False)
    with pytest.raises(EvaluationError, match="protocol: roboreward -> helm"):
        evaluate_models(["a=spec-a"], dataset=dataset, out_dir=out, protocol="helm", scorer_factory=factory)
    changed = tmp_path / "changed"
    shutil.copytree(dataset, changed)
    meta = changed / "test" / "metadata.jsonl"
    meta.write_text(meta.read_text().replace('"reward": 5', '"reward": 4', 1))  # one label changed
    with pytest.raises(EvaluationError, match="dataset_sha256"):
        evaluate_models(["a=spec-a"], dataset=changed, out_dir=out, scorer_factory=factory, show_progress=False)
    # the same data in another folder is the same dataset: reused, nothing rescored
    same = tmp_path / "same"
    shutil.copytree(dataset, same)
    again = evaluate_models(["a=spec-a"], dataset=same, out_dir=out, scorer_factory=factory, show_progress=False)
    assert again.runs[0].reused == N
    # an incomplete file is not appended to under other settings either
    path = out / "predictions" / "a.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(EvaluationError, match="max_frames: 8 -> all"):
        evaluate_models(["a=spec-a"], dataset=dataset, out_dir=out, max_frames="all", scorer_factory=factory)
    assert len(_lines(path)) == 3


def test_one_writer_per_results_folder(dataset, tmp_path):
    import subprocess
    import sys
    import time

    out = tmp_path / "results"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom roboreward.lock import output_lock\n"
         f"with output_lock({str(out)!r}, 'roboreward eval'):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        scorer = FakeScorer(name="m")
        with pytest.raises(EvaluationError, match=f"being written by PID {holder.pid}"):
            evaluate_models([scorer], dataset=dataset, out_dir=out, show_progress=False)
        assert scorer.calls == [] and not (out / "predictions" / "m.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.05)
    result = evaluate_models([FakeScorer(name="m")], dataset=dataset, out_dir=out, show_progress=False)
    assert result.runs[0].scored == N  # the killed holder's lock is taken over


def test_mean_voc_over_prefix_curves_of_successful_videos(dataset, tmp_path):
    class Growing:
        """E[score] grows with the number of frames it sees (a prefix of a video is a frame array)."""

        name = "grow"

        def __init__(self):
            self.curve_calls = 0

        def score(self, video, instruction):
            return self.score_batch([video], [instruction])[0]

        def score_batch(self, videos, instructions):
            if not isinstance(videos[0], str | Path):
                self.curve_calls += len(videos)
            sizes = [6 if isinstance(v, str | Path) else len(v) for v in videos]
            return [RewardOutput(score=min(5, 1 + n // 2), expected=1 + 4 * n / 6) for n in sizes]

    out = tmp_path / "voc"
    scorer = Growing()
    result = evaluate_models([scorer], dataset=dataset, out_dir=out, voc_points=3, show_progress=False)
    (row,) = result.leaderboard
    successes = sum(r == 5 for _, _, r in EXAMPLES)
    assert row["mean_voc"] == pytest.approx(1.0) and row["voc_n"] == successes
    curves = _lines(out / "predictions" / "grow.curves.jsonl")
    assert len(curves) == successes and all(len(c["values"]) == 3 and c["voc"] == pytest.approx(1.0) for c in curves)
    assert scorer.curve_calls == 3 * successes
    again = Growing()
    evaluate_models([again], dataset=dataset, out_dir=out, voc_points=3, show_progress=False)
    assert again.curve_calls == 0  # curves are resumable like predictions
    with pytest.raises(ValueError, match="roboreward"):
        evaluate_models([Growing()], dataset=dataset, out_dir=tmp_path / "h", protocol="helm", voc_points=3)


def test_helm_api_model_gets_text_then_1fps_jpegs_and_is_parsed_helm_style(dataset, tmp_path):
    import base64

    from openai_server import ChatServer

    from roboreward.evaluation.protocols import HelmLocalScorer

    answers = {"open the drawer": "Looks close. ANSWER: 3.5", "stack the cups": "answer: 9", "wipe the table": "?"}

    def handler(req):
        return answers.get(req["messages"][0]["content"][0]["text"].rsplit("Task:", 1)[-1].strip(), "ANSWER: 5")

    out = tmp_path / "api"
    with ChatServer(handler) as server:
        result = evaluate_models(
            [f"api=openai:fake-vlm@{server.base_url}"], dataset=dataset, out_dir=out, protocol="helm",
            robo_arena_instances="all", show_progress=False,
        )  # fmt: skip
        body = server.requests[0]
    parts = body["messages"][0]["content"]
    assert parts[0]["type"] == "text" and "Task:" in parts[0]["text"]  # HELM: the text first
    assert [p["type"] for p in parts[1:]] == ["image_url"] * 1  # 6 frames at 10 fps: one frame at 1 fps
    assert body["temperature"] == 0.0 and body["max_tokens"] == 5000
    rows = {r["task"]: r for r in _lines(out / "predictions" / "api.jsonl")}
    assert rows["open the drawer"]["answer"] == 3.5 and rows["stack the cups"]["answer"] == 9.0
    assert rows["wipe the table"]["answer"] is None
    (row,) = result.leaderboard
    assert row["parse_failures"] == 1 and row["out_of_scale_answers"] == 2  # 3.5 and 9 are not scores 1..5
    assert row["per_subset_mae"]["robo_arena"] == pytest.approx((abs(9 - 1) + 4 + abs(5 - 5)) / 3)
    settings = json.loads((out / "predictions" / "api.settings.json").read_text())
    assert settings["scorer"] == "HelmApiScorer" and settings["protocol"] == "helm"
    # a vllm: checkpoint gets the whole mp4 (the server's video processor samples it, as HELM's local client)
    with ChatServer(handler) as server:
        evaluate_models(
            [f"qwen=vllm:reward-ckpt@{server.base_url}"], dataset=dataset, out_dir=tmp_path / "vllm", limit=1,
            protocol="helm", show_progress=False,
        )  # fmt: skip
        parts = server.requests[0]["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "video_url"]
    sent = base64.b64decode(parts[1]["video_url"]["url"].split(",", 1)[1])
    assert sent == (dataset / "test" / EXAMPLES[0][0]).read_bytes()
    # a local checkpoint is asked HELM's way too: [text, video file], nothing sampled by us
    messages = HelmLocalScorer.messages(type("S", (), {"template": None})(), "clip.mp4", "open the drawer")
    assert [c["type"] for c in messages[0]["content"]] == ["text", "video"]
    assert messages[0]["content"][1]["video"] == "clip.mp4"


def test_leaderboard_plot_legends_clear_of_bars_and_integer_colour_bar(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from roboreward.evaluation import plots

    closed = []
    monkeypatch.setattr(plt, "close", lambda fig=None: closed.append(fig))
    board = [  # equal bars fill the axes: a legend inside them has nowhere to go
        {"model": f"m{i}", "macro_mae": 2.0, "mae": 2.0, "subset_win_rate": 0.95, "instance_win_rate": 0.9}
        for i in range(4)
    ]
    plots.plot_leaderboard(board, tmp_path / "board.png")
    fig = closed[-1]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        bars = [p.get_window_extent(renderer) for p in ax.patches]
        assert bars and not any(legend.overlaps(b) for b in bars)
    row = {"model": "m", "mae": 1.0, "accuracy": 0.5, "confusion_matrix": [[3, 1, 0, 0, 0]] + [[0, 0, 2, 0, 0]] * 4}
    plots.plot_confusion(row, tmp_path / "cm.png")
    colour_bar = closed[-1].axes[-1]
    ticks = [t for t in colour_bar.get_yticks() if colour_bar.get_ylim()[0] <= t <= colour_bar.get_ylim()[1]]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


def test_protocol_settings_full_video_and_refusals():
    from roboreward.evaluation.protocols import EvalProtocol, make_protocol

    ours = EvalProtocol(max_frames="all")
    assert len(ours.sampling().indices(300, 10.0)) == 60  # a 30 s clip at 2 fps: every sampled frame, no cap of 8
    assert len(EvalProtocol().sampling().indices(300, 10.0)) == 8
    assert ours.settings()["max_frames"] == "all" and ours.settings()["message_order"] == "video,text"
    helm = make_protocol("helm", max_frames="ALL", fps=1)
    assert helm.video_processor_kwargs() == {"fps": 1.0, "max_frames": 1_000_000}
    assert make_protocol("helm").video_processor_kwargs() == {}  # the checkpoint's own video processor settings
    s = make_protocol("helm", robo_arena_instances="all").settings()
    assert s["robo_arena_instances"] is None and s["decoding"].startswith("generate") and s["max_new_tokens"] == 5000
    with pytest.raises(ValueError, match="not part of HELM"):
        EvalProtocol("helm", num_frames=4)
    with pytest.raises(ValueError, match="positive integer or 'all'"):
        EvalProtocol(max_frames="many")
    with pytest.raises(ValueError, match="protocol must be one of"):
        EvalProtocol("vlmeval")
