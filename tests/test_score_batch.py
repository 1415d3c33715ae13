"""Scoring many videos: the inputs `roboreward score` takes (files, folders, globs, manifests, a built dataset),
the resumable batch loop and its results files, `roboreward annotate` on LeRobot and built datasets, and the
app's --version / -v / -q options."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import make_frames
from typer.testing import CliRunner

from roboreward.cli import app
from roboreward.scoring.batch import ScoreItem, ScoringError, score_items
from roboreward.scoring.inputs import InputError, collect_items, split_instruction
from roboreward.types import RewardOutput
from roboreward.video import VideoDecodeError, write_video

SAMPLE_LEROBOT = Path(__file__).resolve().parents[1] / "roboreward" / "data" / "sample_source" / "lerobot"
TINY = ["--max-frames", "4", "--min-frames", "2"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """clips/a.mp4, clips/b.mp4, clips/sub/c.webm-less c.mp4 and a non-video file."""
    root = tmp_path_factory.mktemp("clips")
    write_video(root / "a.mp4", make_frames(12, 32, 48, seed=0), fps=10)
    write_video(root / "b.mp4", make_frames(20, 32, 48, seed=1), fps=10)
    (root / "sub").mkdir()
    write_video(root / "sub" / "c.mp4", make_frames(8, 32, 48, seed=2), fps=10)
    (root / "notes.txt").write_text("not a video")
    return root


def _built_dataset(root: Path, splits: dict[str, list[str]], *, bad: str | None = None) -> Path:
    """A built dataset (videofolder layout, metadata.jsonl per split, a card with features) of generated clips."""
    from huggingface_hub import DatasetCard, DatasetCardData

    for split, names in splits.items():
        (root / split).mkdir(parents=True)
        with open(root / split / "metadata.jsonl", "w") as fh:
            for i, name in enumerate(names):
                (root / split / name).parent.mkdir(parents=True, exist_ok=True)
                if name == bad:
                    (root / split / name).write_bytes(b"not a video")
                else:
                    write_video(root / split / name, make_frames(10, 32, 48, seed=i), fps=10)
                row = {"file_name": name, "task": f"task {i % 2}", "reward": 1 + i % 5, "episode_id": f"ep{i}"}
                fh.write(json.dumps({**row, "gpt5_mini_check": "ok"}) + "\n")
    features = [{"name": "video", "dtype": "video"}, {"name": "task", "dtype": "string"}]
    files = [{"split": s, "path": f"{s}/**"} for s in splits]
    data = DatasetCardData(
        license="other",
        configs=[{"config_name": "default", "data_files": files, "features": features}],
        dataset_info={"features": [dict(f) for f in features]},
    )
    DatasetCard.from_template(data, template_str="---\n{{ card_data }}\n---\n# a dataset\n").save(root / "README.md")
    return root


class CountingScorer:
    """Expected score from the instruction's length; fails on videos whose name contains "bad"."""

    name = "counting"
    settings = {"scorer": "CountingScorer", "fps": 2.0, "max_frames": 8, "min_frames": 4, "num_frames": None}

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.singles = 0

    def score(self, video, instruction):
        self.singles += 1
        if "bad" in str(video):
            raise VideoDecodeError(f"{video}: corrupt")
        return RewardOutput(score=3, probs=[0.1, 0.2, 0.4, 0.2, 0.1], expected=3.0 + len(instruction) / 100)

    def score_batch(self, videos, instructions):
        self.batches.append(len(videos))
        if any("bad" in str(v) for v in videos):
            raise VideoDecodeError("one of the batch is corrupt")
        return [self.score(v, t) for v, t in zip(videos, instructions, strict=True)]


# ------------------------------------------------------------------------------------------------------ inputs


def test_inputs_files_folders_globs(clips, monkeypatch):
    assert split_instruction([str(clips), "open the drawer"]) == ([str(clips)], "open the drawer")
    assert split_instruction([str(clips / "a.mp4"), str(clips / "b.mp4")]) == (
        [str(clips / "a.mp4"), str(clips / "b.mp4")],
        None,
    )
    items, kind = collect_items([str(clips), "open the drawer"])
    assert kind == "videos" and [Path(i.video).name for i in items] == ["a.mp4", "b.mp4", "c.mp4"]
    assert {i.instruction for i in items} == {"open the drawer"} and len({i.key for i in items}) == 3
    monkeypatch.chdir(clips)
    items, _ = collect_items(["*.mp4", "sub/*.mp4", "a.mp4", "wipe"])  # a glob, another, a repeat
    assert [str(i.video) for i in items] == ["a.mp4", "b.mp4", "sub/c.mp4"]
    items, _ = collect_items(["**/*.mp4"], instruction="b.mp4")  # -i: every argument is an input
    assert len(items) == 3 and items[0].instruction == "b.mp4"
    with pytest.raises(InputError, match="nope.mp4: no such video file"):
        collect_items(["nope.mp4", "x"])
    with pytest.raises(InputError, match=r"\*.mkv: no video files match"):
        collect_items(["*.mkv", "x"])
    (clips / "empty").mkdir(exist_ok=True)
    with pytest.raises(InputError, match="empty: no video files in this folder"):
        collect_items(["empty", "x"])
    with pytest.raises(InputError, match="give the instruction"):
        collect_items(["a.mp4"])
    with pytest.raises(InputError, match="instruction is empty"):
        collect_items(["a.mp4"], instruction=" ")


def test_inputs_manifests(clips, tmp_path):
    lines = [
        {"path": str(clips / "a.mp4"), "instruction": "open", "episode": 7},
        {"video": "clips/b.mp4", "task": "close", "key": "b-close"},  # relative to the manifest's folder
        {"file_name": "clips/sub/c.mp4"},  # no instruction: the command's fills it
    ]
    (tmp_path / "clips").symlink_to(clips)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines))
    items, kind = collect_items([str(manifest), "wipe"])
    assert kind == "manifest" and [i.instruction for i in items] == ["open", "close", "wipe"]
    assert items[0].fields == {"episode": 7, "video": str(clips / "a.mp4"), "instruction": "open"}
    assert items[1].key == "b-close" and Path(items[1].video).resolve() == (clips / "b.mp4").resolve()
    with pytest.raises(InputError, match=r"m.jsonl:3: no instruction \(one of the columns instruction, task\)"):
        collect_items([str(manifest)])
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["video_path", "task", "id"])
        writer.writeheader()
        writer.writerow({"video_path": "clips/a.mp4", "task": "open", "id": "1"})
        writer.writerow({"video_path": "", "task": "open", "id": "2"})
    with pytest.raises(InputError, match=r"m.csv:3: no video path"):
        collect_items([str(tmp_path / "m.csv")])
    manifest.write_text(json.dumps({"path": "clips/a.mp4", "task": "x", "score": 3}) + "\n")
    with pytest.raises(InputError, match=r"m.jsonl:1: column\(s\) \['score'\] are result columns"):
        collect_items([str(manifest)])
    manifest.write_text('{"path": "a.mp4"\n')
    with pytest.raises(InputError, match="m.jsonl:1: invalid JSON"):
        collect_items([str(manifest)])


def test_inputs_built_dataset_are_keyed_like_eval(tmp_path):
    from roboreward.dataset import read_split
    from roboreward.evaluation import example_keys

    root = _built_dataset(tmp_path / "ds", {"test": ["s1/a.mp4", "s2/b.mp4", "s1/c.mp4"]})
    items, kind = collect_items([str(root)], split="test")
    assert kind == "dataset" and [i.key for i in items] == example_keys(read_split(root, "test"))
    assert items[1].fields == {"file_name": "s2/b.mp4", "task": "task 1", "subset": "s2", "reward": 2}
    with pytest.raises(ValueError, match="no split 'train'"):
        collect_items([str(root)], split="train")
    with pytest.raises(InputError, match="is a LeRobot dataset: score its episodes with `roboreward annotate"):
        collect_items([str(SAMPLE_LEROBOT / "metaworld_sawyer")])


# ------------------------------------------------------------------------------------------------- batch loop


def test_score_items_isolates_failures_and_resumes(tmp_path):
    from roboreward.evaluation import ResultsFile

    items = [ScoreItem(f"k{i}", f"v{i}.mp4", "open", {"n": i}) for i in range(5)]
    items[2] = ScoreItem("k2", "bad.mp4", "open", {"n": 2})
    results = ResultsFile(tmp_path / "r.jsonl")
    scorer = CountingScorer()
    run = score_items(scorer, items, results, batch_size=2, settings=scorer.settings, show_progress=False)
    assert (run.scored, run.failed, run.reused) == (4, 1, 0) and scorer.batches == [2, 2, 1]
    rows = results.read()
    assert set(rows) == {"k0", "k1", "k3", "k4"} and rows["k3"]["n"] == 3 and rows["k3"]["max_frames"] == 8
    assert rows["k0"]["model"] == "counting" and rows["k0"]["expected"] == pytest.approx(3.04)
    (error,) = [json.loads(x) for x in results.errors_path.read_text().splitlines()]
    assert error["key"] == "k2" and error["kind"] == "video" and "bad.mp4: corrupt" in error["error"]
    # a re-run scores only the failed item; once it succeeds the errors file goes
    items[2] = ScoreItem("k2", "v2.mp4", "open", {"n": 2})
    again = score_items(scorer, items, results, batch_size=2, settings=scorer.settings, show_progress=False)
    assert (again.scored, again.reused, again.failed) == (1, 4, 0) and not results.errors_path.exists()
    assert len(results.path.read_text().splitlines()) == 5
    with pytest.raises(ValueError, match="key 'k1' appears more than once"):
        score_items(scorer, [*items, items[1]], results, show_progress=False)


def test_score_items_stops_when_everything_fails_and_loads_lazily(tmp_path):
    from roboreward.evaluation import ResultsFile

    loaded = []

    def loader(i):
        def load():
            loaded.append(i)
            if i == 1:
                raise OSError(f"episode {i}: parquet file missing")
            return f"v{i}.mp4", "open"

        return load

    lazy = [ScoreItem(f"e{i}", load=loader(i)) for i in range(3)]
    results = ResultsFile(tmp_path / "lazy.jsonl")
    run = score_items(CountingScorer(), lazy, results, batch_size=2, show_progress=False)
    assert loaded == [0, 1, 2] and (run.scored, run.failed) == (2, 1)
    assert run.errors == [{"key": "e1", "error": "episode 1: parquet file missing", "kind": "episode"}]
    bad = [ScoreItem(f"b{i}", f"bad{i}.mp4", "x") for i in range(6)]
    with pytest.raises(ScoringError, match="4 items in a row failed"):
        score_items(
            CountingScorer(),
            bad,
            ResultsFile(tmp_path / "bad.jsonl"),
            max_consecutive_failures=4,
            batch_size=2,
            show_progress=False,
        )


# ------------------------------------------------------------------------------------------------------- CLI


def test_score_cli_folder_resumes_and_writes_parquet(clips, tmp_path, tiny_qwen3_vl):
    folder = tmp_path / "videos"
    shutil.copytree(clips, folder)
    (folder / "zz_bad.mp4").write_bytes(b"not a video")
    out = tmp_path / "res" / "scores.jsonl"
    args = ["score", str(folder), "open the drawer", "-m", str(tiny_qwen3_vl), *TINY, "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 1, first.output  # one video failed: reported, the others kept
    assert "4 inputs (videos): 3 scored, 0 already in" in first.output and "1 failed" in first.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [Path(r["video"]).name for r in rows] == ["a.mp4", "b.mp4", "c.mp4"]
    assert all(math.isclose(sum(r["probs"]), 1.0, abs_tol=1e-6) and r["max_frames"] == 4 for r in rows)
    table = pq.read_table(out.with_suffix(".parquet"))
    assert table.num_rows == 3 and table.column("key").to_pylist() == [r["key"] for r in rows]
    assert json.loads(table.schema.metadata[b"roboreward"])["max_frames"] == 4
    errors = out.with_name("scores.errors.jsonl").read_text()
    assert "zz_bad.mp4" in errors
    (folder / "zz_bad.mp4").unlink()
    again = CliRunner().invoke(app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout[again.stdout.index("{") :])
    assert (summary["scored"], summary["reused"], summary["failed"]) == (0, 3, 0)
    changed = CliRunner().invoke(app, [*args[:-4], "--max-frames", "2", "--out", str(out)])
    assert changed.exit_code == 1 and "other settings" in changed.output and "max_frames: 4 -> 2" in changed.output


def test_score_cli_dataset_split_and_manifest(tmp_path, tiny_qwen3_vl):
    root = _built_dataset(tmp_path / "ds", {"test": ["s1/a.mp4", "s2/b.mp4"]})
    out = tmp_path / "preds.jsonl"
    result = CliRunner().invoke(app, ["-q", "score", str(root), "-m", str(tiny_qwen3_vl), *TINY, "--out", str(out)])
    assert result.exit_code == 0 and result.output == "", result.output  # -q: no summary
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["s1/a.mp4", "s2/b.mp4"] and rows[1]["reward"] == 2
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,instruction\n{root / 'test/s1/a.mp4'},open\n")
    single = CliRunner().invoke(app, ["score", str(manifest), "-m", "tiny", *TINY, "--out", str(tmp_path / "m.jsonl")])
    assert single.exit_code == 0 and "1 inputs (manifest): 1 scored" in single.output
    curve = CliRunner().invoke(app, ["score", str(root), "-m", "tiny", "--curve", "2"])
    assert curve.exit_code == 1 and "--curve scores one video" in curve.output


def test_cli_version_and_verbosity():
    from roboreward import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == __version__
    help_text = CliRunner().invoke(app, ["score", "--help"]).output
    assert "default: 2.0" in help_text and "--batch-size" in help_text and "manifest" in help_text
    import logging
    import os

    before = os.environ.get("TQDM_DISABLE")
    assert CliRunner().invoke(app, ["-vv", "version"]).exit_code == 0
    assert logging.getLogger("roboreward").level == logging.DEBUG
    assert CliRunner().invoke(app, ["-q", "version"]).exit_code == 0
    assert logging.getLogger("roboreward").level == logging.ERROR and os.environ.get("TQDM_DISABLE") == "1"
    assert CliRunner().invoke(app, ["version"]).exit_code == 0  # a later command without -q: bars back on
    assert logging.getLogger("roboreward").level == logging.WARNING and os.environ.get("TQDM_DISABLE") == before


# -------------------------------------------------------------------------------------------------- annotate


def test_annotate_lerobot_writes_a_parquet_keyed_by_episode(tmp_path, tiny_qwen3_vl):
    from roboreward.sources import list_source

    root = tmp_path / "lerobot"
    shutil.copytree(SAMPLE_LEROBOT / "metaworld_sawyer", root)
    episodes = sorted(r.locator["episode_index"] for r in list_source(f"lerobot:{root}"))
    args = ["annotate", str(root), "-m", str(tiny_qwen3_vl), *TINY, "--batch-size", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    path = root / "meta" / "rewards" / f"{tiny_qwen3_vl.name}.parquet"
    assert f"wrote {path}" in result.output
    table = pq.read_table(path)
    assert table.column("episode_index").to_pylist() == episodes
    assert table.schema.field("num_frames").type == "int64" and table.schema.field("score").type == "int64"
    for row in table.to_pylist():
        probs = [row[f"p{k}"] for k in range(1, 6)]
        assert math.isclose(sum(probs), 1.0, abs_tol=1e-6) and row["score"] == 1 + probs.index(max(probs))
        assert row["expected"] == pytest.approx(sum(k * p for k, p in zip(range(1, 6), probs, strict=True)))
        assert row["task"] and row["max_frames"] == 4 and row["min_frames"] == 2
    assert json.loads(table.schema.metadata[b"roboreward"])["scorer"] == "RewardModel"
    assert set(table.column("camera").to_pylist()) == {"observation.images.corner"}  # the first non-wrist view
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and f"0 scored, {len(episodes)} reused" in again.output
    gripper = CliRunner().invoke(app, [*args, "--camera", "gripper"])  # another view: its own file, never mixed
    assert gripper.exit_code == 0 and f"{len(episodes)} scored, 0 reused" in gripper.output
    other = pq.read_table(path.with_name(f"{tiny_qwen3_vl.name}.gripper.parquet"))
    assert set(other.column("camera").to_pylist()) == {"observation.images.gripper"}
    not_lerobot = CliRunner().invoke(app, ["annotate", str(tmp_path / "missing"), "-m", "tiny"])
    assert not_lerobot.exit_code == 1 and "no such dataset folder" in not_lerobot.output


def test_annotate_built_dataset_adds_columns(tmp_path, tiny_qwen3_vl):
    from huggingface_hub import DatasetCard

    from roboreward.dataset import read_split

    root = _built_dataset(tmp_path / "ds", {"test": ["s1/a.mp4", "s2/bad.mp4", "s1/c.mp4"]}, bad="s2/bad.mp4")
    before = [json.loads(x) for x in (root / "test" / "metadata.jsonl").read_text().splitlines()]
    result = CliRunner().invoke(app, ["annotate", str(root), "-m", str(tiny_qwen3_vl), *TINY])
    assert result.exit_code == 1 and "test: 2 scored, 0 reused, 1 failed" in result.output
    after = [json.loads(x) for x in (root / "test" / "metadata.jsonl").read_text().splitlines()]
    new = ["pred_score", "pred_p1", "pred_p2", "pred_p3", "pred_p4", "pred_p5", "pred_expected"]
    assert [list(r) for r in after] == [[*b, *new] for b in before]  # every old column kept, in order
    assert all(r[k] is None for k in new for r in after[1:2])  # the corrupt video has no reward
    assert math.isclose(sum(after[0][f"pred_p{k}"] for k in range(1, 6)), 1.0, abs_tol=1e-6)
    rows = read_split(root, "test", check_files=False)  # still a valid split; the columns are extra columns
    assert rows[0].extra["pred_score"] == after[0]["pred_score"] and rows[0].extra["gpt5_mini_check"] == "ok"
    card = DatasetCard.load(root / "README.md")
    names = [f["name"] for f in card.data.configs[0]["features"]]
    assert names[-7:] == new and [f["name"] for f in card.data.dataset_info["features"]][-7:] == new
    assert card.data.roboreward_annotations["pred_"]["max_frames"] == 4
    assert not (root / "test" / ".cache").exists() and (root / ".cache" / "annotate").is_dir()
    # the bad video replaced: a re-run scores only it and fills its columns
    write_video(root / "test" / "s2" / "bad.mp4", make_frames(10, 32, 48, seed=9), fps=10)
    again = CliRunner().invoke(app, ["annotate", str(root), "-m", str(tiny_qwen3_vl), *TINY])
    assert again.exit_code == 0 and "test: 1 scored, 2 reused, 0 failed" in again.output
    final = [json.loads(x) for x in (root / "test" / "metadata.jsonl").read_text().splitlines()]
    assert final[1]["pred_score"] in range(1, 6) and final[0] == after[0]
    card = DatasetCard.load(root / "README.md")
    assert [f["name"] for f in card.data.configs[0]["features"]].count("pred_score") == 1
    bad_prefix = CliRunner().invoke(app, ["annotate", str(root), "-m", "tiny", "--prefix", "my score"])
    assert bad_prefix.exit_code == 1 and "prefix 'my score': use letters, digits and underscores" in bad_prefix.output


def test_pixel_budget_is_checked_from_the_header_before_decoding(clips, monkeypatch):
    import roboreward.scoring.common as common
    from roboreward import video as video_io
    from roboreward.scoring import progress_curve, sample_video
    from roboreward.video import VideoTooLargeError

    path = clips / "a.mp4"  # 12 frames of 48x32
    assert len(sample_video(path, num_frames=3).frames) == 3

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a video over the budget")

    monkeypatch.setattr(common, "read_video", no_decoding)
    monkeypatch.setattr(video_io, "FRAME_PIXEL_BUDGET", 48 * 32 - 1)
    with pytest.raises(VideoTooLargeError, match=r"a.mp4: frames of 48x32 \(1,536 pixels\) exceed"):
        sample_video(path)
    with pytest.raises(VideoTooLargeError, match="<bytes>: frames of 48x32"):
        sample_video(path.read_bytes())
    monkeypatch.setattr(video_io, "FRAME_PIXEL_BUDGET", None)
    monkeypatch.setattr(video_io, "PIXEL_BUDGET", 48 * 32 * 12 - 1)
    with pytest.raises(VideoTooLargeError, match="a.mp4: 48x32 x 12 frames = 18,432 pixels exceed"):
        progress_curve(CountingScorer(), path, "x", num_points=2)
    assert len(sample_video(make_frames(12, 32, 48), num_frames=2).frames) == 2  # frames in memory: no header


def test_write_parquet_keeps_every_column(tmp_path):
    from roboreward.scoring.batch import write_parquet

    path = write_parquet([{"a": 1}, {"a": 2, "b": "x"}], tmp_path / "t.parquet", metadata={"model": "m"})
    table = pq.read_table(path)
    assert table.to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": "x"}]
    assert json.loads(table.schema.metadata[b"roboreward"]) == {"model": "m"}
    with pytest.raises(ValueError, match="t2.parquet: the rows cannot form one table"):
        write_parquet([{"a": 1}, {"a": "x"}], tmp_path / "t2.parquet")
    assert not (tmp_path / "t2.parquet").exists()


def test_annotated_dataset_loads_with_datasets(tmp_path, tiny_qwen3_vl):
    """datasets infers each metadata file's column types: every split needs the reward columns, filled."""
    from datasets import load_dataset

    from roboreward.scoring import load_scorer
    from roboreward.scoring.annotate import annotate_dataset

    root = _built_dataset(tmp_path / "ds", {"train": ["s1/a.mp4", "s2/b.mp4"], "test": ["s1/c.mp4"]})
    scorer = load_scorer(str(tiny_qwen3_vl), max_frames=2)
    partial = annotate_dataset(root, scorer, splits=["test"], show_progress=False)
    assert partial.warnings and "['train'] have no pred_* rewards yet" in partial.warnings[0]
    train = [json.loads(x) for x in (root / "train" / "metadata.jsonl").read_text().splitlines()]
    assert all(r["pred_score"] is None for r in train)
    full = annotate_dataset(root, scorer, show_progress=False)
    assert not full.warnings and full.runs["test"].reused == 1 and full.runs["train"].scored == 2
    ds = load_dataset(str(root), cache_dir=str(tmp_path / "hf-cache"))
    assert ds["train"].features["pred_score"].dtype == "int64" and ds["test"].features["pred_p5"].dtype == "float64"
    assert ds["test"]["pred_score"][0] in range(1, 6) and ds["train"]["task"] == ["task 0", "task 1"]
    with pytest.raises(ValueError, match=r"no split\(s\) \['val'\]"):
        annotate_dataset(root, scorer, splits=["val"], show_progress=False)
