"""The dataset builder end to end: the bundled sample opens with load_dataset, determinism, bad input, resume
after SIGKILL, and the relabeling hook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from build_helpers import make_lerobot_v3, make_lerobot_v21, make_roboarena

from roboreward.dataset import MANIFEST, REPORT, VideoFormat, available_splits, build_dataset, read_split, split_dir
from roboreward.dataset.split import check_no_leakage
from roboreward.types import Example, RelabelResult


def _split_rows(root: Path) -> dict[str, list[dict]]:
    return {s: [r.data for r in read_split(root, s)] for s in available_splits(root)}


def _outputs(root: Path) -> dict[str, bytes]:
    """Everything a dataset user sees: metadata, manifest (with video hashes), the card."""
    out = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.glob("*/metadata.jsonl")}
    out[MANIFEST] = (root / MANIFEST).read_bytes()
    out["README.md"] = (root / "README.md").read_bytes()
    return out


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "roboreward_sample"
    t0 = time.perf_counter()
    summary = build_dataset(["sample"], out, workers=2, show_progress=False)
    assert time.perf_counter() - t0 < 120  # target < ~60 s on 2 cores
    assert summary.episodes_skipped == 0
    return out


@pytest.fixture(scope="module")
def mixed_source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    make_lerobot_v3(
        root / "lerobot" / "so_arm",
        [8, 10, 9, 12, 7, 11, 9, 10],
        [f"task {i}" for i in range(8)],
        cameras=("observation.images.front",),
        per_file=4,
    )
    make_roboarena(root / "arena", [{"a": 1.0, "b": 0.5}, {"a": 0.1, "b": 0.9}, {"a": 0.3, "b": 0.65}], frames=8)
    return root


def _mixed_specs(root: Path) -> list[str]:
    return [f"lerobot:{root / 'lerobot'}", f"roboarena:{root / 'arena'}"]


# ---------------------------------------------------------------------------------------------- the sample


def test_sample_build_opens_with_load_dataset(sample_build, tmp_path):
    import datasets

    ds = datasets.load_dataset(str(sample_build), cache_dir=str(tmp_path / "hf-cache"))
    assert set(ds) == {"train", "validation", "test"}
    report = json.loads((sample_build / REPORT).read_text())
    for split in ds:
        assert ds[split].num_rows == report["splits"][split]["examples"]
    row = ds["test"][0]
    frame = row["video"].get_frame_at(0).data
    assert tuple(frame.shape) == (3, 120, 160) and float(frame.float().std()) > 5
    assert ds["train"].features["failure_mode"].dtype == "string"  # the card's features, not inferred nulls
    # the manifest at the root does not leak into any split
    assert set(ds["train"].column_names) >= {"task", "reward", "episode_id", "kind", "clip_fraction"}


def test_sample_build_layout_labels_and_no_leakage(sample_build):
    from roboreward.video import probe

    rows = _split_rows(sample_build)
    check_no_leakage((s, r["episode_id"]) for s, rs in rows.items() for r in rs)
    sources = {r["source"] for rs in rows.values() for r in rs}
    assert sources == {"metaworld_sawyer", "robo_arena"}
    for split, rs in rows.items():
        assert {r["source"] for r in rs} == sources, f"{split} misses a source"
        for r in rs:
            assert r["file_name"].split("/")[0] == r["source"]
    all_rows = [r for rs in rows.values() for r in rs]
    assert {r["reward"] for r in all_rows} == {1, 2, 3, 4, 5}
    originals = {r["episode_id"]: r for r in all_rows if r["kind"] == "original"}
    clips = [r for r in all_rows if r["kind"] == "clipped"]
    assert len(clips) == 4 * sum(r["reward"] == 5 for r in originals.values())
    split_of = {r["episode_id"]: s for s, rs in rows.items() for r in rs}
    for c in clips:
        assert c["file_name"].endswith(
            f"_attempt_{[0.1, 0.3, 0.5, 0.7].index(c['clip_fraction']) + 1}_score_{c['reward']}.mp4"
        )
        assert c["reward"] == {0.1: 1, 0.3: 2, 0.5: 3, 0.7: 4}[c["clip_fraction"]]
        sdir = split_dir(sample_build, split_of[c["episode_id"]])  # val/ holds the validation split
        full = probe(sdir / originals[c["episode_id"]]["file_name"]).num_frames
        clip = probe(sdir / c["file_name"]).num_frames
        assert clip == max(1, round(full * c["clip_fraction"]))
    card = (sample_build / "README.md").read_text()
    assert "configs:" in card and "| robo_arena |" in card and "hf upload" in card


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_other_split(mixed_source, tmp_path):
    specs = _mixed_specs(mixed_source)
    a = build_dataset(specs, tmp_path / "a", seed=7, show_progress=False)
    b = build_dataset(specs, tmp_path / "b", seed=7, workers=2, shard_size=3, show_progress=False)
    assert _outputs(tmp_path / "a")[MANIFEST] == _outputs(tmp_path / "b")[MANIFEST]
    assert {k: v for k, v in _outputs(tmp_path / "a").items() if k != "README.md"} == {
        k: v for k, v in _outputs(tmp_path / "b").items() if k != "README.md"
    }
    assert a.counts == b.counts and sum(a.counts.values()) == 8 * 5 + 6 + 4 * 2
    c = build_dataset(specs, tmp_path / "c", seed=8, show_progress=False)
    split_a = {r["episode_id"]: s for s, rs in _split_rows(tmp_path / "a").items() for r in rs}
    split_c = {r["episode_id"]: s for s, rs in _split_rows(tmp_path / "c").items() for r in rs}
    assert split_a.keys() == split_c.keys() and split_a != split_c
    assert c.counts == a.counts  # same sizes per split, other episodes
    # sampling per sub-dataset
    d = build_dataset(specs, tmp_path / "d", seed=7, episodes_per_source=3, clip_fractions="none", show_progress=False)
    rows = [r for rs in _split_rows(tmp_path / "d").values() for r in rs]
    assert sorted(r["source"] for r in rows) == ["robo_arena"] * 3 + ["so_arm"] * 3
    assert d.episodes_planned == 6


def test_assembly_streams_the_manifest_in_row_groups(mixed_source, tmp_path, monkeypatch):
    """Assembly holds one shard and one manifest row group at a time; small row groups give the same rows."""
    import pyarrow.parquet as pq

    import roboreward.dataset.assemble as build_mod

    specs = _mixed_specs(mixed_source)
    build_dataset(specs, tmp_path / "one", seed=7, show_progress=False)
    monkeypatch.setattr(build_mod, "MANIFEST_ROW_GROUP", 7)
    build_dataset(specs, tmp_path / "many", seed=7, show_progress=False)
    one, many = pq.ParquetFile(tmp_path / "one" / MANIFEST), pq.ParquetFile(tmp_path / "many" / MANIFEST)
    assert one.metadata.num_row_groups == 1 and many.metadata.num_row_groups == -(-one.metadata.num_rows // 7)
    assert one.read().equals(many.read())
    outputs = _outputs(tmp_path / "many")
    assert {k: v for k, v in _outputs(tmp_path / "one").items() if k != MANIFEST} == {
        k: v for k, v in outputs.items() if k != MANIFEST
    }
    assert not list((tmp_path / "many").rglob(".tmp-*"))


def test_out_dir_must_be_a_build(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a RoboReward build folder"):
        build_dataset(["sample"], tmp_path, show_progress=False)


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_reported_and_the_rest_is_built(tmp_path, sample_mp4):
    root = tmp_path / "src"
    make_roboarena(
        root / "arena",
        [
            {"a": 1.0, "b": 0.5},  # fine
            {"a": 0.5, "b": 0.5, "video": {"A": b"\x00\x00\x00\x18ftypmp42 not a real video"}},  # corrupt
            {"a": 0.5, "b": 0.5, "video": {"B": b""}},  # empty file
            {"a": 0.5, "b": 0.5, "instruction": ""},  # no instruction (both A and B)
            {"a": 1.5, "b": 0.2},  # progress outside 0-100 (A only)
            {"a": 0.5, "b": 0.5, "cameras": ("wrist",)},  # missing camera (both)
        ],
        frames=6,
    )
    make_lerobot_v3(root / "lerobot" / "ds", [6, 6], ["wave", ""], cameras=("observation.images.cam",))
    summary = build_dataset(
        [f"roboarena:{root / 'arena'}", f"lerobot:{root / 'lerobot'}"], tmp_path / "out", show_progress=False
    )
    report = json.loads((tmp_path / "out" / REPORT).read_text())
    skipped = {s["episode"]: s for s in report["skipped"]}
    assert set(skipped) == {
        "session_001_A",
        "session_002_B",
        "session_003_A",
        "session_003_B",
        "session_004_A",
        "session_005_A",
        "session_005_B",
        "ds_episode_000001",
    }
    assert skipped["session_001_A"]["field"] == "video" and "session_001_A" in skipped["session_001_A"]["error"]
    assert skipped["session_002_B"]["field"] == "video" and "empty" in skipped["session_002_B"]["error"]
    assert skipped["session_003_A"]["field"] == "language_instruction"
    assert skipped["session_004_A"]["field"] == "policies.A.partial_success"
    assert "outside 0-1" in skipped["session_004_A"]["error"]
    assert skipped["session_005_B"]["field"] == "camera left_shoulder"
    assert skipped["ds_episode_000001"]["field"] == "instruction"
    assert summary.episodes_skipped == 8 and summary.episodes_built == 14 - 8
    assert report["episodes"]["skipped_by_field"]["video"] == 2
    built = {r["episode_id"] for rs in _split_rows(tmp_path / "out").values() for r in rs}
    assert built == {
        "session_000_A",
        "session_000_B",
        "session_001_B",
        "session_002_A",
        "session_004_B",
        "ds_episode_000000",
    }
    # no file of a skipped episode is left behind
    names = {p.name for p in (tmp_path / "out").rglob("*.mp4")}
    assert not any(n.startswith(("session_001_A", "session_003", "session_005")) for n in names)


# ---------------------------------------------------------------------------------------------- resume


def test_resume_after_sigkill_redoes_nothing_finished(mixed_source, tmp_path):
    specs = _mixed_specs(mixed_source)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "roboreward", "build", "--out", str(out), "--shard-size", "1", "--seed", "3"]
    for s in specs:
        cmd += ["--source", s]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shards = out / ".build" / "shards"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if shards.is_dir() and len(list(shards.glob("shard-*.json"))) >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the build ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "README.md").exists()  # killed before the assembly
    done = {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.json")}
    assert 2 <= len(done) < 14

    resumed = build_dataset(specs, out, seed=3, shard_size=1, show_progress=False)
    assert resumed.shards_reused == len(done) and resumed.shards_total == 14
    assert {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.json") if p.name in done} == done
    assert not list(out.rglob(".tmp-*"))

    fresh = build_dataset(specs, tmp_path / "fresh", seed=3, shard_size=1, show_progress=False)
    assert fresh.shards_reused == 0
    assert _outputs(out) == _outputs(tmp_path / "fresh")
    # a second run is a no-op that reuses everything and leaves the same output
    again = build_dataset(specs, out, seed=3, shard_size=1, show_progress=False)
    assert again.shards_reused == 14 and _outputs(out)[MANIFEST] == _outputs(tmp_path / "fresh")[MANIFEST]


# ---------------------------------------------------------------------------------------------- relabel hook


class FakeRelabeler:
    """Cleans the instruction, proposes one counterfactual for successes, reports a skipped paraphrase."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, episode, video_path: Path) -> RelabelResult:
        assert video_path.is_file()
        self.calls.append(episode.id)
        examples = []
        if episode.id.endswith("3"):
            raise ConnectionError("LM server went away")
        if episode.label == 5:
            examples.append(Example(file_name="", task="bad reward", reward=9, kind="counterfactual"))
            examples.append(
                Example(
                    file_name="",
                    task=f"{episode.instruction} twice",
                    reward=3,
                    kind="counterfactual",
                    failure_mode="did it only once",
                )
            )
        return RelabelResult(
            instruction=episode.instruction.capitalize() + ".",
            examples=examples,
            skipped=["paraphrase: model returned invalid JSON"],
            calls=2,
        )


def test_relabel_hook_rows_report_and_resume(mixed_source, tmp_path):
    import datasets

    specs = [f"lerobot:{mixed_source / 'lerobot'}"]
    fake = FakeRelabeler()
    summary = build_dataset(specs, tmp_path / "r", relabeler=fake, relabel_config={"fake": 1}, show_progress=False)
    assert len(fake.calls) == 8
    rows = [r for rs in _split_rows(tmp_path / "r").values() for r in rs]
    cf = [r for r in rows if r["kind"] == "counterfactual"]
    assert len(cf) == 7 and all(r["reward"] == 3 and r["failure_mode"] == "did it only once" for r in cf)
    failed = [r for r in rows if r["episode_id"] == "so_arm_episode_000003"]  # the relabeler raised: rows kept as is
    assert len(failed) == 5 and all(r["task"] == "task 3" for r in failed)
    rows = [r for r in rows if r["episode_id"] != "so_arm_episode_000003"]
    originals = {r["episode_id"]: r for r in rows if r["kind"] == "original"}
    for r in cf:  # the counterfactual reuses the episode's video
        assert r["file_name"] == originals[r["episode_id"]]["file_name"]
        assert r["original_instruction"] == originals[r["episode_id"]]["original_instruction"]
    assert all(r["task"].endswith(".") and r["task"][0].isupper() for r in rows if r["kind"] != "counterfactual")
    assert all(r["original_instruction"].startswith("task ") for r in rows)
    report = summary.report
    notes = [n["reason"] for n in report["relabel"]["notes"]]
    assert report["relabel"]["lm_calls"] == 14 and len(notes) == 7 + 7 + 1
    assert sum("outside 1..5" in n for n in notes) == 7 and sum("LM server went away" in n for n in notes) == 1
    ds = datasets.load_dataset(str(tmp_path / "r"), cache_dir=str(tmp_path / "hf-cache"))
    assert sum(ds[s].num_rows for s in ds) == len(rows) + 5 == 7 * 6 + 5  # rows sharing an mp4 all load
    # resume: nothing is relabeled again
    again = build_dataset(specs, tmp_path / "r", relabeler=fake, relabel_config={"fake": 1}, show_progress=False)
    assert len(fake.calls) == 8 and again.shards_reused == again.shards_total


def test_relabel_threads_stop_at_the_next_episode_on_ctrl_c(mixed_source, tmp_path):
    """With --relabel, shards run on threads; Ctrl-C (KeyboardInterrupt in the main thread) makes each thread stop
    after its current episode instead of finishing its shard, and the same build then resumes."""
    import threading

    specs = [f"lerobot:{mixed_source / 'lerobot'}"]
    calls: list[str] = []
    lock = threading.Lock()

    def slow(episode, video_path: Path) -> RelabelResult:
        with lock:
            calls.append(episode.id)
            if len(calls) == 2:
                # Ctrl-C while both threads are inside an episode (a terminal's SIGINT, to the main thread)
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.3)
        return RelabelResult(instruction=episode.instruction, examples=[], skipped=[], calls=1)

    out = tmp_path / "r"
    # Python's own Ctrl-C handler, also where the test runner was started with SIGINT ignored (background CI)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            build_dataset(
                specs, out, shard_size=4, workers=2, relabeler=slow, relabel_config={"slow": 1}, show_progress=False
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(calls) <= 4  # the episodes in progress (and at most one started before the stop), not 2 shards of 4
    assert not list((out / ".build" / "shards").glob("shard-*.json"))  # no half shard was marked done
    summary = build_dataset(
        specs, out, shard_size=4, workers=2, relabeler=slow, relabel_config={"slow": 1}, show_progress=False
    )
    assert summary.episodes_built == 8 and summary.shards_reused == 0


# ---------------------------------------------------------------------------------------------- LeRobot v3 remux


@pytest.mark.parametrize("concat", [True, False])
def test_lerobot_v3_segments_are_remuxed_when_exact(tmp_path, monkeypatch, concat):
    import numpy as np

    import roboreward.dataset.episode as build_mod
    from roboreward.sources import list_source, load_episode
    from roboreward.video import read_all_frames

    src = make_lerobot_v3(
        tmp_path / "src" / "ds", [9, 12, 7], ["a", "b", "c"], cameras=("observation.images.cam",), concat=concat
    )
    encodes: list[Path] = []
    real_transcode = build_mod.transcode

    def transcode(source, fmt, targets, **kw):
        encodes.append(targets[0][0])
        return real_transcode(source, fmt, targets, **kw)

    monkeypatch.setattr(build_mod, "transcode", transcode)
    build_dataset(
        [f"lerobot:{src}"], tmp_path / "out", clip_fractions="none", split_fractions="1,0,0", show_progress=False
    )
    assert len(encodes) == (0 if concat else 3)  # LeRobot-style files: stream copy, no re-encoding
    refs = {r.id: r for r in list_source(f"lerobot:{src}")}
    for row in _split_rows(tmp_path / "out")["train"]:
        frames, _ = read_all_frames(tmp_path / "out" / "train" / row["file_name"])
        source = load_episode(refs[row["episode_id"]]).video
        assert frames.shape == source.shape
        if concat:
            assert np.array_equal(frames, source)  # bit-exact: the original packets


# ---------------------------------------------------------------------------------------------- RLDS streaming


def test_rlds_images_are_streamed_with_the_bytes_of_decoded_frames(tmp_path, monkeypatch):
    import numpy as np
    from build_helpers import make_rlds, rlds_episode_features
    from rlds_helpers import encode_example, write_tfrecord

    import roboreward.dataset.episode as episode_mod
    from roboreward.dataset.episode import EpisodeSettings, process_episode
    from roboreward.sources import ReaderOptions, SourceError, list_source, load_episode
    from roboreward.types import COLUMNS, EncodedFrames

    root = make_rlds(tmp_path / "src", "toto", [(9, "pour the water"), (6, "wipe the table")])
    bad = rlds_episode_features(5, "stack cups", seed=7)
    bad["steps/observation/image"][3] = b"\xff\xd8\xff not a jpeg"
    write_tfrecord(root / "toto" / "1.0.0" / "toto-train.tfrecord-00001-of-00002", [encode_example(bad)])
    seen = []
    real_load = episode_mod.load_episode

    def load(ref, options):
        episode = real_load(ref, options)
        seen.append(episode.video)
        return episode

    monkeypatch.setattr(episode_mod, "load_episode", load)
    out = tmp_path / "out"
    summary = build_dataset([f"rlds:{root}"], out, split_fractions="1,0,0", show_progress=False)
    assert summary.episodes_skipped == 1 and seen and all(isinstance(v, EncodedFrames) for v in seen)
    (skip,) = json.loads((out / REPORT).read_text())["skipped"]
    assert skip["field"] == "steps/observation/image[3]" and "cannot decode frame" in skip["error"]
    refs = {r.id: r for r in list_source(f"rlds:{root}")}
    with pytest.raises(SourceError, match=r"steps/observation/image\[3\]"):
        load_episode(refs[skip["episode"]])
    assert isinstance(load_episode(refs["toto_train_000000"]).video, np.ndarray)  # decode_segments=True: as before
    # the streamed episodes give the rows and bytes the decoded frames gave (the path before streaming)
    rows = _split_rows(out)["train"]
    clips = ((0.1, 1), (0.3, 2), (0.5, 3), (0.7, 4))
    for eid in ("toto_train_000000", "toto_train_000001"):
        old = tmp_path / "old"
        decoded = process_episode(refs[eid], "train", old, EpisodeSettings(ReaderOptions(), clips))
        streamed = process_episode(
            refs[eid], "train", tmp_path / "new", EpisodeSettings(ReaderOptions(decode_segments=False), clips)
        )
        assert isinstance(seen[-1], EncodedFrames)
        assert streamed[0] == decoded[0] and streamed[3] == decoded[3]
        assert [{c: r[c] for c in COLUMNS} for r in rows if r["episode_id"] == eid] == decoded[0]
        for rel in decoded[3]:
            assert (out / "train" / rel).read_bytes() == (old / "train" / rel).read_bytes()


# ---------------------------------------------------------------------------------------------- released layout


def test_rebuild_and_resplit_from_released_layout(mixed_source, tmp_path):
    from roboreward.sources import list_source, load_episode

    first = tmp_path / "first"
    build_dataset(_mixed_specs(mixed_source), first, seed=1, show_progress=False)
    refs = list(list_source(f"released:{first}"))
    rows = [r for rs in _split_rows(first).values() for r in rs]
    assert len(refs) == len(rows)
    groups = {}
    for ref in refs:  # all examples of an episode share a split group
        ep = load_episode(ref)
        row = ep.meta["released_row"]
        assert ep.label == row["reward"] and ep.instruction == row["task"] and ep.meta["no_clip"]
        groups.setdefault(row["episode_id"], set()).add(ref.group)
    assert all(len(g) == 1 for g in groups.values())

    again = tmp_path / "again"
    build_dataset([f"released:{first}"], again, seed=5, show_progress=False)
    new_rows = [r for rs in _split_rows(again).values() for r in rs]
    key = lambda r: (r["episode_id"], r["kind"], r["reward"], r["clip_fraction"], r["task"])  # noqa: E731
    assert sorted(map(key, new_rows)) == sorted(map(key, rows))  # nothing lost, nothing clipped twice
    check_no_leakage((s, r["episode_id"]) for s, rs in _split_rows(again).items() for r in rs)
    assert all(Path(r["file_name"]).parts[0] == r["source"] for r in new_rows)
    old_split = {r["episode_id"]: s for s, rs in _split_rows(first).items() for r in rs}
    new_split = {r["episode_id"]: s for s, rs in _split_rows(again).items() for r in rs}
    assert old_split != new_split  # re-split with another seed


# ---------------------------------------------------------------------------------------------- real relabeler


def test_cli_build_with_real_relabeler_over_http(tmp_path):
    """``roboreward build --relabel --backend openai`` against a real local chat-completions server."""
    from openai_server import ChatServer
    from relabel_helpers import World
    from typer.testing import CliRunner

    from roboreward.cli import app

    out = tmp_path / "rr"
    args = [
        "build",
        "--source",
        "sample",
        "--out",
        str(out),
        "--episodes-per-source",
        "1",
        "--clip-fractions",
        "none",
        "--split-fractions",
        "1,0,0",
        "--relabel",
        "--backend",
        "openai",
        "--text-model",
        "fake",
        "--api-key",
        "k",
        "--paraphrases",
        "1",
    ]
    with ChatServer(World().http) as server:
        result = CliRunner().invoke(app, [*args, "--base-url", server.base_url])
        assert result.exit_code == 0, result.output
        first = len(server.requests)
    rows = _split_rows(out)["train"]
    originals = [r for r in rows if r["kind"] == "original"]
    assert len(originals) == 2  # one episode per sub-dataset
    for o in originals:
        mine = [r for r in rows if r["episode_id"] == o["episode_id"]]
        assert sorted(r["reward"] for r in mine if r["kind"] == "counterfactual") == [1, 2, 3, 4]
        assert any(r["kind"] == "paraphrase" for r in mine)
        assert o["task"] != o["original_instruction"]  # the cleaned instruction (World capitalises)
        assert {r["file_name"] for r in mine} == {o["file_name"]}
    assert all(r["file_name"] in {o["file_name"] for o in rows if o["kind"] == "original"} for r in rows)
    assert first > 0 and (out / ".cache" / "lm").is_dir()
    # the same command again: every shard is reused, no LM call is made
    with ChatServer(World().http) as server:
        result = CliRunner().invoke(app, [*args, "--base-url", server.base_url])
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 0
    assert "1/1 shards reused" in " ".join(result.output.split())


def test_ctrl_c_stops_workers_and_resumes(tmp_path):
    """SIGINT to the process group (a terminal's Ctrl-C) with 2 workers: exit 130, no stray process, resume."""
    # enough episodes that a starved test process still finds the build mid-way (shards take ~0.1 s each)
    n = 96
    make_lerobot_v3(
        tmp_path / "src" / "so_arm",
        [8 + i % 5 for i in range(n)],
        [f"task {i}" for i in range(n)],
        cameras=("observation.images.front",),
        per_file=16,
    )
    specs = [f"lerobot:{tmp_path / 'src'}"]
    out = tmp_path / "int"
    cmd = [sys.executable, "-m", "roboreward", "build", "--out", str(out), "--shard-size", "1", "--workers", "2"]
    for s in specs:
        cmd += ["--source", s]
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        # a terminal's child gets SIGINT's default action; a CI runner started in the background of a
        # non-interactive shell ignores SIGINT, which the build would inherit (and rightly keep ignoring)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    shards = out / ".build" / "shards"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(list(shards.glob("shard-*.json"))) < 2:
        time.sleep(0.005)
    assert proc.poll() is None, "the build ended before Ctrl-C"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    done = len(list(shards.glob("shard-*.json")))
    assert proc.returncode == 130, f"exit {proc.returncode} with {done}/{n} shards done: {err[-1500:]}"
    assert "re-run the same command to resume" in err
    resumed = build_dataset(specs, out, shard_size=1, workers=2, show_progress=False)
    assert resumed.shards_reused == done >= 2 and resumed.episodes_built == n


# ------------------------------------------------------------------------------------ output format, codecs, shards


def _frames(path: Path):
    from roboreward.video import read_all_frames

    return read_all_frames(path)[0]


def test_default_format_is_the_releases_and_keeps_the_last_frame(tmp_path):
    """A 30 fps 400x300 source comes out at 10 fps, 320x240 (aspect kept), H.264; the episode still ends on the
    source's last frame and the clips are cut from the same output frames; the card says what was done."""
    import numpy as np
    from build_helpers import episode_frames

    from roboreward.video import probe

    src = make_lerobot_v21(tmp_path / "src" / "big", [31], ["lift the cup"], fps=30, size=(300, 400))
    build_dataset([f"lerobot:{src}"], tmp_path / "out", split_fractions="1,0,0", show_progress=False)
    rows = {r["kind"] + str(r["reward"]): r for r in _split_rows(tmp_path / "out")["train"]}
    full = tmp_path / "out" / "train" / rows["original5"]["file_name"]
    info = probe(full)
    assert (info.fps, info.width, info.height, info.codec, info.num_frames) == (10.0, 320, 240, "h264", 10)
    last = _frames(full)[-1].astype(float).mean((0, 1))
    want = episode_frames(31, 0, h=300, w=400)[-1].astype(float).mean((0, 1))
    assert np.abs(last - want).max() < 6  # the moving bar's final position: the last source frame
    for fraction, score in ((0.1, 1), (0.3, 2), (0.5, 3), (0.7, 4)):
        clip = probe(tmp_path / "out" / "train" / rows[f"clipped{score}"]["file_name"])
        assert clip.num_frames == max(1, round(10 * fraction)) and (clip.width, clip.height) == (320, 240)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "at most 10 fps, at most 320 px on the long side" in card


def test_native_format_copies_the_sources_bytes(tmp_path):
    import hashlib

    src = make_lerobot_v21(tmp_path / "src" / "ds", [12, 9], ["a", "b"], fps=30, size=(300, 400))
    out = tmp_path / "out"
    build_dataset(
        [f"lerobot:{src}"],
        out,
        split_fractions="1,0,0",
        clip_fractions="none",
        video=VideoFormat.parse("native", "native"),
        show_progress=False,
    )
    built = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "train").rglob("*.mp4")}
    given = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (src / "videos").rglob("*.mp4")}
    assert built == given
    assert "the source's frame rate, the source's size" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="--video-fps must be a number or 'native'"):
        VideoFormat.parse("fast", "native")
    with pytest.raises(ValueError, match="--video-size"):
        VideoFormat.parse(10, 4)


@pytest.mark.parametrize("codec", ["libsvtav1", "libx265", "mpeg4"])
def test_av1_hevc_mpeg4_sources(tmp_path, monkeypatch, codec):
    """LeRobot v3 segments in AV1 (LeRobot's default), HEVC or mpeg4: kept as they are with the native format
    (remuxed: no decode+re-encode, the same frames), H.264 at the release's format by default."""
    import numpy as np

    import roboreward.dataset.episode as episode_mod
    from roboreward.sources import list_source, load_episode
    from roboreward.video import probe

    src = make_lerobot_v3(
        tmp_path / "src" / "ds", [9, 12], ["a", "b"], cameras=("observation.images.cam",), size=(64, 128), codec=codec
    )
    transcodes: list[Path] = []
    real = episode_mod.transcode
    monkeypatch.setattr(
        episode_mod, "transcode", lambda s, f, t, **kw: (transcodes.append(t[0][0]), real(s, f, t, **kw))[1]
    )
    native = tmp_path / "native"
    kw = dict(split_fractions="1,0,0", clip_fractions="none", show_progress=False)
    build_dataset([f"lerobot:{src}"], native, video=VideoFormat(fps=None, size=None), **kw)
    assert transcodes == []  # stream copy, also for AV1 (its decoder is libdav1d)
    refs = {r.id: r for r in list_source(f"lerobot:{src}")}
    want = {"libsvtav1": "libdav1d", "libx265": "hevc", "mpeg4": "mpeg4"}[codec]
    for row in _split_rows(native)["train"]:
        path = native / "train" / row["file_name"]
        assert probe(path).codec == want
        assert np.array_equal(_frames(path), load_episode(refs[row["episode_id"]]).video)  # the same packets
    default = tmp_path / "default"
    build_dataset([f"lerobot:{src}"], default, **kw)
    assert len(transcodes) == 2
    for row in _split_rows(default)["train"]:
        assert probe(default / "train" / row["file_name"]).codec == "h264"


def test_pixel_budget_refuses_before_decoding(tmp_path, monkeypatch):
    import roboreward.dataset.media as media
    from roboreward.video import VideoInfo, VideoTooLargeError, check_pixel_budget

    with pytest.raises(VideoTooLargeError, match="15000x15000"):
        check_pixel_budget(VideoInfo(2, 10.0, 15000, 15000), 10**12)
    with pytest.raises(VideoTooLargeError, match="exceed the budget"):
        check_pixel_budget(VideoInfo(1000, 10.0, 640, 480), 10**8)
    check_pixel_budget(VideoInfo(100, 10.0, 640, 480), 10**8)
    src = make_lerobot_v21(tmp_path / "src" / "ds", [20, 5], ["a", "b"])  # 128x48: 122,880 and 30,720 pixels
    monkeypatch.setattr(media, "_decode", lambda *a, **k: pytest.fail("decoded a video over the budget"))
    summary = build_dataset(
        [f"lerobot:{src}"],
        tmp_path / "out",
        split_fractions="1,0,0",
        clip_fractions="none",
        pixel_budget=100_000,
        video=VideoFormat(fps=None, size=None),
        show_progress=False,
    )
    report = json.loads((tmp_path / "out" / REPORT).read_text())
    assert summary.episodes_skipped == 1 and report["skipped"][0]["field"] == "video"
    assert "122,880 pixels exceed the budget of 100,000" in report["skipped"][0]["error"]


def test_copied_videos_are_decoded_at_both_ends(tmp_path):
    """A RoboArena failure (no clips cut) whose mp4 lost its tail is refused, not shipped."""
    from roboreward.video import VideoDecodeError, check_ends

    src = make_roboarena(tmp_path / "arena", [{"a": 0.2, "b": 0.5}], frames=40)
    videos = sorted(src.rglob("*.mp4"))
    data = videos[0].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        check_ends(cut)
    assert check_ends(videos[1]) >= 2
    videos[0].write_bytes(cut.read_bytes())
    summary = build_dataset([f"roboarena:{src}"], tmp_path / "out", split_fractions="1,0,0", show_progress=False)
    assert summary.episodes_skipped == 1 and summary.episodes_built == 1
    report = json.loads((tmp_path / "out" / REPORT).read_text())
    assert report["skipped"][0]["field"] == "video"


def test_shards_over_machines_then_assemble(mixed_source, tmp_path):
    """``--num-shards 3 --shard-index i`` into three part folders, then ``assemble``: the same dataset as one
    build; a missing part or a part of another build is refused, naming it."""
    from roboreward.dataset import assemble_parts

    specs = _mixed_specs(mixed_source)
    kw = dict(seed=3, shard_size=2, show_progress=False)
    whole = build_dataset(specs, tmp_path / "whole", **kw)
    parts = [tmp_path / f"part-{i}" for i in range(3)]
    for i, part in enumerate(parts):
        s = build_dataset(specs, part, num_shards=3, shard_index=i, **kw)
        assert s.part == (i, 3) and not (part / "train").joinpath("metadata.jsonl").exists()
    with pytest.raises(ValueError, match=r"parts \[2\] of 3 are missing"):
        assemble_parts(tmp_path / "final", parts[:2])
    other = tmp_path / "other"
    build_dataset(specs, other, num_shards=3, shard_index=2, **{**kw, "seed": 4})
    with pytest.raises(ValueError, match="part of another build"):
        assemble_parts(tmp_path / "final", [*parts[:2], other])
    report = assemble_parts(tmp_path / "final", parts)
    assert _outputs(tmp_path / "final") == _outputs(tmp_path / "whole")
    assert report["episodes"]["built"] == whole.episodes_built
    again = build_dataset(specs, tmp_path / "final", **kw)  # an ordinary build folder: every shard reused
    assert again.shards_reused == again.shards_total


def test_out_inside_a_source_is_refused(mixed_source, tmp_path):
    """Re-splitting a built dataset in place (``--source released:X --out X``) is refused and X is untouched."""
    import hashlib

    built = tmp_path / "built"
    build_dataset(_mixed_specs(mixed_source), built, show_progress=False)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in built.rglob("*") if p.is_file()}
    for out in (built, built / "sub"):
        with pytest.raises(ValueError, match="is (the source|inside the source) released:"):
            build_dataset([f"released:{built}"], out, seed=1, show_progress=False)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in built.rglob("*") if p.is_file()} == before


def test_cli_build_summary_on_stdout_and_clear_errors(tmp_path):
    from typer.testing import CliRunner

    from roboreward.cli import app

    src = make_lerobot_v21(tmp_path / "src" / "ds", [6, 7], ["a", "b"])
    runner = CliRunner()
    ok = runner.invoke(app, ["build", "-s", f"lerobot:{src}", "-o", str(tmp_path / "out"), "--clip-fractions", "none"])
    assert ok.exit_code == 0, ok.output
    assert "2 episodes built, 0 skipped" in ok.stdout
    bad = runner.invoke(app, ["build", "-s", f"lerobot:{src}", "-o", str(tmp_path / "o2"), "--video-fps", "fast"])
    assert bad.exit_code == 2 and "--video-fps must be a number or 'native'" in bad.stderr


def _encode_lazily(path: Path, n: int, w: int = 640, h: int = 480, fps: int = 10) -> None:
    """An ``n``-frame H.264 mp4 made one frame at a time (the test itself never holds the episode)."""
    from fractions import Fraction

    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.options = {"preset": "ultrafast", "g": str(2 * fps)}
        base = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
        for t in range(n):
            frame = np.roll(base, 8 * t, axis=1)
            for packet in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


def test_worker_memory_does_not_grow_with_episode_length(tmp_path):
    """A LeRobot v3 episode of 640x480 frames, 30 vs 300 frames (276 MB of RGB if held), built in a fresh process
    each: the peak RSS differs by far less than the episode (it is streamed from the shared mp4, not decoded whole)."""
    peaks = {}
    for n in (30, 300):
        src = make_lerobot_v3(tmp_path / f"src{n}" / "ds", [n], ["lift"], cameras=("observation.images.cam",))
        (video,) = (src / "videos").rglob("*.mp4")
        _encode_lazily(video, n)
        code = (
            "import resource; from roboreward.dataset import build_dataset; "
            f"s = build_dataset(['lerobot:{src}'], '{tmp_path / f'out{n}'}', split_fractions='1,0,0', "
            "show_progress=False); assert s.episodes_built == 1, s.report['skipped']; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
        )
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        peaks[n] = int(run.stdout.split()[-1])
    assert peaks[300] - peaks[30] < 60, peaks  # MiB


def test_card_metadata_license_size_and_split_sizes(sample_build, tmp_path):
    """The card's header is what the Hub validates: license (other with a name and a link, or a Hub id),
    size_categories and the split sizes in dataset_info (issue 18)."""
    from huggingface_hub import DatasetCard

    from roboreward.dataset import CardLicense, assemble_parts  # noqa: F401  (public names)
    from roboreward.dataset.card import size_category

    card = DatasetCard.load(sample_build / "README.md").data
    counts = {
        s: len((sample_build / d / "metadata.jsonl").read_text().splitlines())
        for s, d in (("train", "train"), ("validation", "val"), ("test", "test"))
    }
    assert card.license == "other" and card.license_name == "source-datasets" and card.license_link == "README.md"
    assert card.size_categories == [size_category(sum(counts.values()))] == ["n<1K"]
    assert {s["name"]: s["num_examples"] for s in card.dataset_info["splits"]} == counts
    assert "## License" in (sample_build / "README.md").read_text()
    assert [size_category(n) for n in (999, 1_000, 54_321, 2_000_000)] == ["n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]

    out = tmp_path / "cc"
    build_dataset(["sample"], out, workers=1, show_progress=False, license=CardLicense("cc-by-4.0"))
    other = DatasetCard.load(out / "README.md").data
    assert other.license == "cc-by-4.0" and other.get("license_name") is None and other.get("license_link") is None
    assert json.loads((out / "build_report.json").read_text())["card"]["license"]["license"] == "cc-by-4.0"


def test_lerobot_image_camera_builds_streamed(tmp_path):
    """A LeRobot ``dtype: image`` camera (written by LeRobot 0.4.4) goes through the builder still encoded and
    comes out as the release's mp4, every frame kept."""
    from roboreward.video import probe

    src = Path(__file__).parent / "fixtures" / "lerobot" / "h264_multi"
    summary = build_dataset(
        [f"lerobot:{src}"], tmp_path / "out", camera="overhead", clip_fractions="none", show_progress=False
    )
    assert summary.episodes_skipped == 0
    rows = [
        json.loads(line)
        for d in ("train", "val", "test")
        if (tmp_path / "out" / d / "metadata.jsonl").is_file()
        for line in (tmp_path / "out" / d / "metadata.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 3
    lengths = sorted(probe(next((tmp_path / "out").glob(f"*/{r['file_name']}"))).num_frames for r in rows)
    assert lengths == [5, 6, 8]
