"""Source readers on generated fixtures of each layout, sampling, splitting and clipping."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from build_helpers import (
    episode_frames,
    make_lerobot_v3,
    make_lerobot_v21,
    make_rlds,
    make_roboarena,
    mean_color,
    rlds_episode_features,
)
from rlds_helpers import encode_example, write_tfrecord

from roboreward import sources
from roboreward.dataset.clip import DEFAULT_CLIPS, clip_file_name, clip_frames, clip_length, parse_clips
from roboreward.dataset.split import allocate, assign_splits, check_no_leakage, parse_fractions
from roboreward.sources import EpisodeRef, ReaderOptions, SourceError, list_source, load_episode

# ------------------------------------------------------------------------------------------------ LeRobot


def test_lerobot_v3_segments_tasks_and_cameras(tmp_path):
    lengths = [9, 14, 11, 6]
    root = make_lerobot_v3(
        tmp_path / "my_robot_ds", lengths, ["open the drawer", "close it", "wipe", "stack"], per_file=3
    )
    refs = list(list_source(f"lerobot:{root}"))
    assert [r.id for r in refs] == [f"my_robot_ds_episode_{i:06d}" for i in range(4)]
    assert {r.source for r in refs} == {"my_robot_ds"}
    for i, ref in enumerate(refs):
        ep = load_episode(ref)
        assert ep.label == 5 and ep.embodiment == "so100" and ep.fps == 10
        assert ep.meta["camera"] == "observation.images.front"  # the non-wrist view by default
        assert isinstance(ep.video, np.ndarray) and len(ep.video) == lengths[i]
        # the decoded segment is this episode's (its flat colour), not a neighbour's
        expected = mean_color(episode_frames(lengths[i], i * 10 + 0))
        assert np.abs(mean_color(ep.video) - expected).max() < 12
    assert load_episode(refs[1]).instruction == "close it"
    wrist = load_episode(refs[2], ReaderOptions(camera="wrist"))
    assert wrist.meta["camera"] == "observation.images.wrist"
    assert np.abs(mean_color(wrist.video) - mean_color(episode_frames(11, 21))).max() < 12
    with pytest.raises(SourceError, match=r"my_robot_ds_episode_000000: camera: camera 'top' not found"):
        load_episode(refs[0], ReaderOptions(camera="top"))


def test_lerobot_missing_task_names_episode(tmp_path):
    root = make_lerobot_v3(tmp_path / "ds", [5, 5], ["push the block", ""], cameras=("observation.images.cam",))
    refs = list(list_source(f"lerobot:{root}"))
    assert load_episode(refs[0]).instruction == "push the block"
    with pytest.raises(SourceError) as err:
        load_episode(refs[1])
    assert err.value.episode_id == "ds_episode_000001" and err.value.field == "instruction"


def test_lerobot_v21_and_parent_folder_of_datasets(tmp_path):
    make_lerobot_v21(tmp_path / "all" / "aloha_ds", [7, 8], ["fold the towel", "hang the mug"])
    make_lerobot_v3(tmp_path / "all" / "so_ds", [5], ["pick the pen"], cameras=("observation.images.cam",))
    refs = list(list_source(f"lerobot:{tmp_path / 'all'}"))
    assert sorted({r.source for r in refs}) == ["aloha_ds", "so_ds"] and len(refs) == 3
    ep = load_episode(next(r for r in refs if r.source == "aloha_ds" and r.id.endswith("1")))
    assert ep.instruction == "hang the mug" and isinstance(ep.video, Path) and ep.video.name == "episode_000001.mp4"


# ------------------------------------------------------------------------------------------------ RLDS


def test_tfrecord_codec_matches_reference_protobuf(tmp_path):
    """Our hand-written tf.train.Example codec agrees with the real protobuf classes (PyPI tfrecord)."""
    from tfrecord import example_pb2
    from tfrecord.writer import TFRecordWriter

    feats = rlds_episode_features(4, "open the top drawer", seed=3)
    feats["steps/int_neg"] = [-3, 0, 2**40]
    ours = encode_example(feats)
    ref = example_pb2.Example.FromString(ours)
    assert list(ref.features.feature["steps/int_neg"].int64_list.value) == [-3, 0, 2**40]
    assert ref.features.feature["steps/language_instruction"].bytes_list.value[0] == b"open the top drawer"
    parsed = sources.parse_example(ref.SerializeToString())
    assert parsed["steps/observation/image"] == feats["steps/observation/image"]
    assert parsed["steps/action"] == pytest.approx(feats["steps/action"], abs=1e-6)
    assert parsed["steps/int_neg"] == [-3, 0, 2**40]
    # records framed by the reference writer (real CRC32C) are read back with CRCs verified
    path = tmp_path / "ref.tfrecord"
    writer = TFRecordWriter(str(path))
    writer.write(
        {
            "steps/language_instruction": ([b"a", b"b"], "byte"),
            "steps/x": ([1.5, 2.5], "float"),
            "steps/n": ([7, -1], "int"),
        }
    )
    writer.close()
    [(offset, length)] = list(sources.tfrecord_offsets(path))
    back = sources.parse_example(sources.read_tfrecord(path, offset, length, verify=True))
    assert back == {"steps/language_instruction": [b"a", b"b"], "steps/x": [1.5, 2.5], "steps/n": [7, -1]}


def test_crc32c_pure_python_fallback(monkeypatch):
    import sys

    fast = sources.crc32c(b"123456789")
    monkeypatch.setitem(sys.modules, "crc32c", None)
    assert sources.crc32c(b"123456789") == fast == 0xE3069283  # the CRC-32C check value


def test_rlds_reader(tmp_path):
    make_rlds(tmp_path, "toto", [(6, "pour the water"), (4, "wipe the table"), (5, "stack cups")], shards=2)
    refs = list(list_source(f"rlds:{tmp_path}"))
    assert len(refs) == 3 and {r.source for r in refs} == {"toto"}
    eps = [load_episode(r) for r in refs]
    assert sorted(e.instruction for e in eps) == ["pour the water", "stack cups", "wipe the table"]
    assert all(e.label == 5 and e.meta["camera"] == "image" for e in eps)
    assert sorted(len(e.video) for e in eps) == [4, 5, 6]
    assert eps[0].meta["file_path"].startswith("/data/raw/")
    wrist = load_episode(refs[0], ReaderOptions(camera="wrist_image"))
    assert wrist.meta["camera"] == "wrist_image" and not np.array_equal(wrist.video, eps[0].video)


def test_rlds_bad_episodes(tmp_path):
    good = rlds_episode_features(3, "fold cloth", 1)
    no_text = rlds_episode_features(3, "", 2)
    broken = dict(good, **{"steps/observation/image": [b"\x89PNG\r\n\x1a\nnot really a png"] * 3})
    d = tmp_path / "ds" / "1.0.0"
    d.mkdir(parents=True)
    write_tfrecord(d / "ds-train.tfrecord-00000-of-00001", [encode_example(f) for f in (good, no_text, broken)])
    refs = list(list_source(f"rlds:{tmp_path}"))
    assert load_episode(refs[0]).instruction == "fold cloth"
    with pytest.raises(SourceError, match="ds_train_000001: language_instruction"):
        load_episode(refs[1])
    with pytest.raises(SourceError, match=r"ds_train_000002: steps/observation/image\[0\]"):
        load_episode(refs[2])
    # a damaged length header is caught by its CRC
    data = bytearray((d / "ds-train.tfrecord-00000-of-00001").read_bytes())
    data[0:8] = struct.pack("<Q", 5)
    (d / "ds-train.tfrecord-00000-of-00001").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="length CRC mismatch"):
        list(list_source(f"rlds:{tmp_path}"))


# ------------------------------------------------------------------------------------------------ RoboArena


def test_roboarena_labels_bins_and_groups(tmp_path):
    make_roboarena(tmp_path, [{"a": 1.0, "b": 0.35}, {"a": 0.0, "b": 0.79, "instruction": "  close  the lid "}])
    refs = list(list_source(f"roboarena:{tmp_path}"))
    assert [r.id for r in refs] == ["session_000_A", "session_000_B", "session_001_A", "session_001_B"]
    assert refs[0].group == refs[1].group != refs[2].group  # both policies of a session share a split group
    eps = [load_episode(r) for r in refs]
    assert [e.label for e in eps] == [5, 2, 1, 4]  # default bins 20/40/60/80 on 100 * partial_success
    assert eps[3].instruction == "close the lid" and eps[3].meta["progress"] == pytest.approx(79)
    assert eps[0].source == "robo_arena" and eps[0].video.name == "left_shoulder.mp4"
    custom = [load_episode(r, ReaderOptions(progress_bins=(10, 30, 50, 70))) for r in refs]
    assert [e.label for e in custom] == [5, 3, 1, 5]
    assert load_episode(refs[1], ReaderOptions(camera="wrist")).video.name == "wrist.mp4"


@pytest.mark.parametrize(
    ("session", "field"),
    [
        ({"a": 1.7, "b": 0.5}, "policies.A.partial_success"),
        ({"a": "n/a", "b": 0.5}, "policies.A.partial_success"),
        ({"a": 0.5, "b": 0.5, "instruction": ""}, "language_instruction"),
        ({"a": 0.5, "b": 0.5, "cameras": ("wrist",)}, "camera left_shoulder"),
    ],
)
def test_roboarena_bad_input_names_episode_and_field(tmp_path, session, field):
    make_roboarena(tmp_path, [session], frames=4)
    ref = next(iter(list_source(f"roboarena:{tmp_path}")))
    with pytest.raises(SourceError) as err:
        load_episode(ref)
    assert err.value.episode_id == "session_000_A" and err.value.field == field
    assert str(err.value).startswith(f"session_000_A: {field}: ")


def test_source_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="bad --source"):
        list(list_source("hdf5:/x"))
    with pytest.raises(FileNotFoundError):
        list(list_source(f"lerobot:{tmp_path / 'missing'}"))
    with pytest.raises(FileNotFoundError, match="no LeRobot dataset"):
        list(list_source(f"lerobot:{tmp_path}"))


def test_bundled_sample_source_is_real_and_small():
    root = sources.sample_source_dir()
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 5 * 2**20
    refs = list(list_source("sample"))
    by_source = {s: [r for r in refs if r.source == s] for s in {r.source for r in refs}}
    assert len(by_source["metaworld_sawyer"]) >= 12 and len(by_source["robo_arena"]) >= 8
    arena = [load_episode(r) for r in by_source["robo_arena"]]
    assert {e.label for e in arena} >= {1, 5} and len({e.label for e in arena}) >= 3  # successes, failures, partial
    ep = load_episode(by_source["metaworld_sawyer"][0])
    assert ep.instruction and ep.label == 5 and ep.video.shape[1:] == (120, 160, 3)
    assert ep.video.std() > 10  # a rendered scene, not a blank frame


# ------------------------------------------------------------------------------------------------ sampling / split


def _refs(source: str, n: int) -> list[EpisodeRef]:
    return [EpisodeRef("lerobot", source, f"{source}_{i:04d}", f"{source}_{i:04d}") for i in range(n)]


def test_uniform_per_source_sampling_is_seeded_and_independent():
    refs = _refs("bridge", 50) + _refs("taco_play", 7) + _refs("viola", 30)
    a = sources.sample_per_source(refs, 10, seed=1)
    assert [sum(r.source == s for r in a) for s in ("bridge", "taco_play", "viola")] == [10, 7, 10]
    assert a == sources.sample_per_source(refs, 10, seed=1)
    assert a != sources.sample_per_source(refs, 10, seed=2)
    # the draw of one source does not depend on the others
    alone = sources.sample_per_source(_refs("viola", 30), 10, seed=1)
    assert [r for r in a if r.source == "viola"] == alone
    # roughly uniform: every episode is drawn about equally often over seeds
    hits = np.zeros(50)
    for seed in range(300):
        for r in sources.sample_per_source(_refs("bridge", 50), 10, seed=seed):
            hits[int(r.id.split("_")[-1])] += 1
    assert hits.min() > 30 and hits.max() < 95  # expectation 60


def test_split_is_grouped_deterministic_and_stratified():
    groups = [("bridge", f"g{i}") for i in range(40)] + [("robo_arena", f"s{i}") for i in range(4)]
    a = assign_splits(groups + groups[:5], (0.8, 0.1, 0.1), seed=3)
    assert a == assign_splits(list(reversed(groups)), (0.8, 0.1, 0.1), seed=3)
    assert a != assign_splits(groups, (0.8, 0.1, 0.1), seed=4)
    counts = {s: sum(1 for g, v in a.items() if v == s and g.startswith("g")) for s in ("train", "validation", "test")}
    assert counts == {"train": 32, "validation": 4, "test": 4}
    arena = sorted(v for g, v in a.items() if g.startswith("s"))
    assert arena == ["test", "train", "train", "validation"]  # every split sees the small source
    with pytest.raises(ValueError, match="two sources"):
        assign_splits([("a", "g"), ("b", "g")])
    check_no_leakage([("train", "e1"), ("train", "e1"), ("test", "e2")])
    with pytest.raises(ValueError, match="both"):
        check_no_leakage([("train", "e1"), ("test", "e1")])


def test_allocate_and_fractions():
    assert allocate(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert allocate(2, (0.8, 0.1, 0.1)) == [2, 0, 0]
    assert allocate(3, (0.8, 0.1, 0.1)) == [1, 1, 1]
    assert allocate(5, (1.0, 0.0, 0.0)) == [5, 0, 0]
    assert parse_fractions("0.7,0.2,0.1") == (0.7, 0.2, 0.1)
    for bad in ("0.5,0.5", "0.9,0.2,0.1", "-0.1,0.6,0.5"):
        with pytest.raises(ValueError):
            parse_fractions(bad)


# ------------------------------------------------------------------------------------------------ clipping


def test_clip_mapping_and_names():
    assert parse_clips(None) == DEFAULT_CLIPS == ((0.1, 1), (0.3, 2), (0.5, 3), (0.7, 4))
    assert parse_clips("0.2,0.6") == ((0.2, 1), (0.6, 2))
    assert parse_clips("0.25:2, 0.75:4") == ((0.25, 2), (0.75, 4))
    assert parse_clips("none") == ()
    for bad in ("1.0:4", "0.5:5", "0.2:3,0.6:2", "0.2:1,0.4", "x:1"):
        with pytest.raises(ValueError):
            parse_clips(bad)
    assert [clip_length(27, f) for f, _ in DEFAULT_CLIPS] == [3, 8, 14, 19]
    assert clip_length(3, 0.1) == 1
    frames = np.arange(20)[:, None, None, None].repeat(3, -1)
    assert clip_frames(frames, 0.5)[-1, 0, 0, 0] == 9
    assert clip_file_name("bridge_ep_7", 2, 2) == "bridge_ep_7_attempt_2_score_2.mp4"


def test_encode_prefixes_one_pass(tmp_path):
    from roboreward.dataset.clip import encode_prefixes
    from roboreward.video import VideoDecodeError, probe, read_all_frames, write_video

    src = write_video(tmp_path / "ep.mp4", episode_frames(30, 4, h=64, w=128), 10)
    decoded, _ = read_all_frames(src)
    outs = [(clip_length(30, f), tmp_path / f"c{s}.mp4") for f, s in DEFAULT_CLIPS]
    assert encode_prefixes(src, outs) == 30
    for n, path in outs:
        info = probe(path)
        assert (info.num_frames, info.fps, info.width, info.height) == (n, 10.0, 128, 64)
        frames, _ = read_all_frames(path)
        assert np.abs(frames.astype(int) - decoded[:n]).mean() < 3  # the same picture, re-encoded
        assert np.abs(mean_color(frames[-1:]) - mean_color(decoded[n - 1 : n])).max() < 3  # ends at frame n-1
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        encode_prefixes(bad, [(3, tmp_path / "x.mp4")])
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "x.mp4").exists()


def test_rlds_array_record_files(tmp_path):
    from array_record.python.array_record_module import ArrayRecordWriter

    d = tmp_path / "viola" / "0.1.0"
    d.mkdir(parents=True)
    writer = ArrayRecordWriter(str(d / "viola-train.array_record-00000-of-00001"), "group_size:1")
    for i, text in enumerate(["open the oven", "place the bowl"]):
        writer.write(encode_example(rlds_episode_features(3 + i, text, seed=i)))
    writer.close()
    refs = list(list_source(f"rlds:{tmp_path}"))
    assert [r.id for r in refs] == ["viola_train_000000", "viola_train_000001"]
    eps = [load_episode(r) for r in refs]
    assert [e.instruction for e in eps] == ["open the oven", "place the bowl"]
    assert [len(e.video) for e in eps] == [3, 4] and eps[1].video.shape[1:] == (48, 128, 3)


def test_subset_names_match_the_release(tmp_path):
    from roboreward.sources import OXE_EMBODIMENTS, subset_name

    assert subset_name("stanford_hydra_dataset_converted_externally_to_rlds") == "stanford_hydra"
    assert subset_name("utokyo_pr2_tabletop_manipulation_converted_externally_to_rlds") == "utokyo_pr2_tabletop"
    assert subset_name("austin_sirius_dataset") == "austin_sirius"  # LeRobot port name
    assert subset_name("fractal20220817_data") == "fractal20220817_data"
    assert subset_name("my_robot_dataset") == "my_robot_dataset"  # not an OXE subset: kept
    assert len(OXE_EMBODIMENTS) == 22
    make_rlds(tmp_path, "taco_play", [(3, "open the drawer")])
    ep = load_episode(next(iter(list_source(f"rlds:{tmp_path}"))))
    assert ep.source == "taco_play" and ep.embodiment == "franka"
    d = tmp_path / "x" / "ucsd_kitchen_dataset_converted_externally_to_rlds" / "0.1.0"
    d.mkdir(parents=True)
    (d / "f.tfrecord-00000-of-00001").write_bytes(
        (tmp_path / "taco_play/1.0.0/taco_play-train.tfrecord-00000-of-00001").read_bytes()
    )
    assert {r.source for r in list_source(f"rlds:{tmp_path / 'x'}")} == {"ucsd_kitchen"}


# ------------------------------------------------------------------------------------ the formats' own bytes
# tests/fixtures/ holds datasets written by LeRobot 0.4.4 / 0.3.3 and TFDS 4.9 themselves (see the make_*_fixtures.py
# scripts there). Frames are flat colours: red = 40 + 50 * episode, green = 20 + 25 * frame.

FIXTURES = Path(__file__).parent / "fixtures"


def _rgb(frame: np.ndarray) -> np.ndarray:
    return frame.reshape(-1, 3).mean(0)


def _check_frames(video: np.ndarray, episode: int, length: int, blue: int = 128) -> None:
    assert len(video) == length
    for i, frame in enumerate(video):
        assert np.abs(_rgb(frame) - (40 + 50 * episode, 20 + 25 * i, blue)).max() < 6, (episode, i, _rgb(frame))


def _copy(name: str, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(FIXTURES / "lerobot" / name, dst))


def _edit_episodes(root: Path, **columns) -> None:
    """Rewrite columns of a v3 dataset's meta/episodes parquet: name -> function(row dict) -> value."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    [f] = (root / "meta" / "episodes").glob("**/*.parquet")
    table = pq.read_table(f)
    rows = table.to_pylist()
    for name, fn in columns.items():
        values = [fn(r) for r in rows]
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pa.array(values, type=table.schema.field(name).type))
    pq.write_table(table, f)


def test_lerobot_044_h264_dataset_cameras_tasks_and_frames():
    refs = list(list_source(f"lerobot:{FIXTURES / 'lerobot' / 'h264_multi'}"))
    assert [r.id for r in refs] == [f"h264_multi_episode_{i:06d}" for i in range(3)]
    eps = [load_episode(r) for r in refs]
    # the depth stream sorts first but is never the default camera
    assert {e.meta["camera"] for e in eps} == {"observation.images.front"}
    for i, (e, n) in enumerate(zip(eps, [6, 8, 5], strict=True)):
        _check_frames(e.video, i, n)  # every frame, the last included, and no neighbour's
    # LeRobot stored episode 1's tasks as list(set(...)); the instruction follows the frames' order
    assert eps[1].instruction == "open the drawer; put the cup in the drawer"
    assert eps[0].instruction == "pick up the red block"
    # a dtype: image camera is read from the data parquet
    overhead = load_episode(refs[2], ReaderOptions(camera="overhead"))
    assert overhead.meta["camera"] == "observation.images.overhead"
    _check_frames(overhead.video, 2, 5, blue=230)
    # the builder's path (decode_segments off) gets it still encoded, streamed frame by frame: the same frames
    from roboreward.types import EncodedFrames

    streamed = load_episode(refs[2], ReaderOptions(camera="overhead", decode_segments=False)).video
    assert isinstance(streamed, EncodedFrames) and len(streamed) == 5
    assert np.array_equal(np.stack(list(streamed)), overhead.video)
    with pytest.raises(SourceError, match="is a depth map"):
        load_episode(refs[0], ReaderOptions(camera="depth"))


def test_lerobot_multi_task_instruction_does_not_depend_on_stored_order(tmp_path):
    root = _copy("h264_multi", tmp_path / "ds")
    _edit_episodes(root, tasks=lambda r: list(reversed(r["tasks"])))
    ep = load_episode(list(list_source(f"lerobot:{root}"))[1])
    assert ep.instruction == "open the drawer; put the cup in the drawer"
    (root / "data" / "chunk-000" / "file-000.parquet").unlink()  # frames cannot tell: sorted
    ep = load_episode(list(list_source(f"lerobot:{root}"))[1])
    assert ep.instruction == "open the drawer; put the cup in the drawer"


def test_lerobot_last_frame_kept_when_to_timestamp_marks_it(tmp_path):
    root = _copy("h264_multi", tmp_path / "ds")
    key = "videos/observation.images.front"
    _edit_episodes(root, **{f"{key}/to_timestamp": lambda r: r[f"{key}/from_timestamp"] + (r["length"] - 1) / 10})
    for i, (ref, n) in enumerate(zip(list_source(f"lerobot:{root}"), [6, 8, 5], strict=True)):
        ep = load_episode(ref)
        _check_frames(ep.video, i, n)
        assert ep.meta["segment"]["t1"] == pytest.approx(ep.meta["segment"]["t0"] + n / 10)


def test_lerobot_nan_from_timestamp_without_length_is_an_episode_error(tmp_path):
    root = _copy("h264_multi", tmp_path / "ds")
    key = "videos/observation.images.front"
    _edit_episodes(
        root,
        **{f"{key}/from_timestamp": lambda r: float("nan") if r["episode_index"] == 1 else r[f"{key}/from_timestamp"]},
        length=lambda r: None if r["episode_index"] == 1 else r["length"],
    )
    refs = list(list_source(f"lerobot:{root}"))
    with pytest.raises(SourceError) as err:
        load_episode(refs[1])
    assert err.value.episode_id == "ds_episode_000001" and err.value.field == f"{key}/from_timestamp"
    _check_frames(load_episode(refs[2]).video, 2, 5)  # its neighbours are unaffected


def test_lerobot_av1_v30_and_v21_datasets():
    av1 = [load_episode(r) for r in list_source(f"lerobot:{FIXTURES / 'lerobot' / 'av1'}")]
    assert [e.meta["lerobot_version"] for e in av1] == ["v3.0", "v3.0"]
    _check_frames(av1[0].video, 0, 5)
    _check_frames(av1[1].video, 1, 7)
    v21 = [load_episode(r) for r in list_source(f"lerobot:{FIXTURES / 'lerobot' / 'v21'}")]
    assert [e.meta["lerobot_version"] for e in v21] == ["v2.1", "v2.1"]
    assert isinstance(v21[1].video, Path) and v21[1].video.name == "episode_000001.mp4"
    assert v21[1].instruction == "open the drawer; put the cup in the drawer"
    from roboreward.video import read_all_frames

    _check_frames(read_all_frames(v21[1].video)[0], 1, 6)


def test_lerobot_hub_cache_snapshot_is_named_after_the_repository(tmp_path):
    repo = tmp_path / "hub" / "datasets--lerobot--austin_sirius_dataset"
    old = _copy("av1", repo / "snapshots" / "0123abcd")
    new = _copy("av1", repo / "snapshots" / "89ef4567")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("89ef4567")
    refs = list(list_source(f"lerobot:{old}"))
    assert {r.source for r in refs} == {"austin_sirius"} and refs[0].id == "austin_sirius_episode_000000"
    assert load_episode(refs[0]).embodiment == "so100"  # robot_type from info.json wins over the OXE table
    refs = list(list_source(f"lerobot:{repo}"))  # the repository folder: only the snapshot refs/main names
    assert len(refs) == 2 and {r.locator["root"] for r in refs} == {str(new)}


def test_lerobot_listing_errors_are_named_and_skipped(tmp_path):
    import json

    from roboreward.sources import ListingProblem

    _copy("av1", tmp_path / "all" / "good")
    (_copy("av1", tmp_path / "all" / "listy") / "meta" / "info.json").write_text("[1, 2]")
    (_copy("av1", tmp_path / "all" / "broken") / "meta" / "info.json").write_text('{"fps": 10, oops}')
    (_copy("av1", tmp_path / "all" / "ancient") / "meta" / "info.json").write_text('{"codebase_version": "v1.6"}')
    v21 = _copy("v21", tmp_path / "all" / "old")
    lines = (v21 / "meta" / "episodes.jsonl").read_text().splitlines()
    bad = json.loads(lines[0]) | {"episode_index": "x"}
    (v21 / "meta" / "episodes.jsonl").write_text("\n".join([json.dumps(bad), lines[1], "{not json", lines[1]]) + "\n")
    problems: list[ListingProblem] = []
    refs = list(list_source(f"lerobot:{tmp_path / 'all'}", problems=problems))
    assert sorted(r.id for r in refs) == ["good_episode_000000", "good_episode_000001", "old_episode_000001"]
    by_where = {p.where: p for p in problems}
    assert str(tmp_path / "all" / "listy") in by_where and "expected a JSON dict, got list" in str(problems)
    assert "broken" in str(problems) and "info.json: invalid JSON" in str(problems)
    assert "codebase_version 'v1.6' is not read" in str(problems)
    assert any(p.where.endswith("episodes.jsonl:1") and "'x'" in p.error for p in problems)
    assert any(p.where.endswith("episodes.jsonl:3") and "invalid JSON" in p.error for p in problems)
    assert any(p.where.endswith("episodes.jsonl:4") and "listed twice" in p.error for p in problems)
    assert all(p.as_skipped()["source"] for p in problems)
    with pytest.raises(ValueError, match=r"info\.json"):  # no problems list: the first one raises, named
        list(list_source(f"lerobot:{tmp_path / 'all'}"))


def test_lerobot_source_split(tmp_path):
    import json

    root = _copy("h264_multi", tmp_path / "ds")
    info = json.loads((root / "meta" / "info.json").read_text())
    info["splits"] = {"train": "0:2", "test": "2:3"}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    test = list(list_source(f"lerobot:{root}", ReaderOptions(source_split="test")))
    assert [r.id for r in test] == ["ds_episode_000002"]
    with pytest.raises(ValueError, match="split 'val' not in info.json splits"):
        list(list_source(f"lerobot:{root}", ReaderOptions(source_split="val")))


def test_rlds_tfds_datasets_fps_instructions_versions_and_splits():
    refs = list(list_source(f"rlds:{FIXTURES / 'rlds'}"))
    assert sorted({r.source for r in refs}) == ["austin_sirius", "bridge", "droid", "language_table", "taco_play"]
    assert {r.locator["version"] for r in refs if r.source == "bridge"} == {"0.1.0"}  # newest only, not merged
    eps = {r.id: load_episode(r) for r in refs}
    assert sorted(eps) == [
        "austin_sirius_train_000000", "austin_sirius_train_000001", "bridge_test_000000", "bridge_train_000000",
        "bridge_train_000001", "droid_train_000000", "droid_train_000001", "language_table_train_000000",
        "language_table_train_000001", "taco_play_test_000000", "taco_play_train_000000",
    ]  # fmt: skip
    fps = {e.source: e.fps for e in eps.values()}
    assert fps == {"austin_sirius": 20, "bridge": 5, "droid": 15, "language_table": 10, "taco_play": 15}
    assert eps["droid_train_000001"].instruction == "close the laptop"  # language_instruction empty, _2 set
    assert eps["language_table_train_000000"].instruction == "push the red star to the blue cube"
    assert eps["bridge_train_000001"].instruction == "open the microwave"
    assert eps["taco_play_train_000000"].meta["camera"] == "rgb_static"
    assert eps["droid_train_000000"].meta["camera"] == "exterior_image_1_left"
    assert eps["bridge_test_000000"].video.shape == (3, 480, 640, 3)
    assert np.abs(_rgb(eps["bridge_train_000001"].video[2]) - (90, 70, 128)).max() < 6
    assert np.abs(_rgb(eps["taco_play_test_000000"].video[0]) - (190, 20, 128)).max() < 6
    # per-source options
    opts = ReaderOptions(source_fps={"bridge": 7}, source_split="test")
    problems: list = []
    test = [load_episode(r, opts) for r in list_source(f"rlds:{FIXTURES / 'rlds'}", opts, problems=problems)]
    assert sorted((e.id, e.fps) for e in test) == [("bridge_test_000000", 7.0), ("taco_play_test_000000", 15.0)]
    assert sorted(p.source for p in problems) == ["austin_sirius", "droid", "language_table"]
    assert problems[0].error == "no 'test' split (available: train)"
    old = list(list_source(f"rlds:{FIXTURES / 'rlds' / 'bridge'}", ReaderOptions(source_version="0.0.9")))
    assert [load_episode(r).instruction for r in old] == ["an old copy"]
    with pytest.raises(ValueError, match=r"no version '9\.9\.9' \(available: 0\.0\.9, 0\.1\.0\)"):
        list(list_source(f"rlds:{FIXTURES / 'rlds' / 'bridge'}", ReaderOptions(source_version="9.9.9")))
    droid = [r for r in refs if r.source == "droid"]
    third = ReaderOptions(instruction_key="steps/language_instruction_3")
    assert load_episode(droid[1], third).instruction == "shut it"
    with pytest.raises(SourceError, match="empty in every step"):
        load_episode(droid[0], third)
    with pytest.raises(SourceError, match=r"steps/nope: no such feature \(instruction-like features: .*_2"):
        load_episode(droid[0], ReaderOptions(instruction_key="steps/nope"))
    with pytest.raises(ValueError, match="bad --source-fps"):
        sources.parse_source_fps(["bridge"])
    assert sources.parse_source_fps(["bridge_data_v2=4", "viola=20"]) == {"bridge": 4.0, "viola": 20.0}


def test_rlds_truncated_file_is_named_and_its_good_records_kept(tmp_path):
    import shutil

    from roboreward.sources import ListingProblem

    d = tmp_path / "bridge" / "0.1.0"
    shutil.copytree(FIXTURES / "rlds" / "bridge" / "0.1.0", d)
    f = d / "bridge-train.tfrecord-00000-of-00001"
    f.write_bytes(f.read_bytes()[:-100])
    problems: list[ListingProblem] = []
    refs = list(list_source(f"rlds:{tmp_path}", problems=problems))
    assert [r.id for r in refs] == ["bridge_test_000000", "bridge_train_000000"]
    [p] = problems
    assert p.where == str(f) and "truncated record" in p.error
    assert load_episode(refs[1]).instruction == "put the spoon in the pot"
    with pytest.raises(ValueError, match="truncated record"):
        list(list_source(f"rlds:{tmp_path}"))


# ------------------------------------------------------------------------------------------------ RoboArena dumps


def _arena_session(root: Path, name: str, policies: dict, *, layout: str, instruction: str = "wipe the table") -> Path:
    """A session folder as RoboArena dumps it: metadata.yaml + ``<side>_<policy>/`` videos, in either layout
    (``cameras``: left_shoulder.mp4 ...; ``2025``: ``<policy>_<timestamp>_video_left.mp4`` ...)."""
    import yaml

    from roboreward.video import write_video

    sdir = root / "evaluation_sessions" / name
    sdir.mkdir(parents=True)
    meta = {"session_id": name, "language_instruction": instruction, "policies": {}}
    for k, (side, (policy, score)) in enumerate(policies.items()):
        meta["policies"][side] = {"policy_name": policy, "partial_success": score}
        folder = sdir / f"{side}_{policy}"
        folder.mkdir()
        for c, cam in enumerate(("left", "right", "wrist")):
            fname = f"{cam}_shoulder.mp4" if layout == "cameras" and cam != "wrist" else f"{cam}.mp4"
            if layout == "2025":
                fname = f"{policy}_2025_03_01_12_00_{k:02d}_video_{cam}.mp4"
            write_video(folder / fname, episode_frames(4, 10 * k + c, h=32, w=48), 15)
    (sdir / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return sdir


def test_roboarena_both_dump_layouts_and_a_third_policy(tmp_path):
    _arena_session(tmp_path, "2025_03_01_a", {"A": ("pi0", 1.0), "B": ("octo", 0.3)}, layout="cameras")
    _arena_session(
        tmp_path, "2025_03_02_b", {"A": ("pi0_fast", 0.5), "B": ("paligemma", 0.0), "C": ("dp", 0.9)}, layout="2025"
    )
    refs = list(list_source(f"roboarena:{tmp_path}"))
    assert [r.id for r in refs] == [f"2025_03_01_a_{s}" for s in "AB"] + [f"2025_03_02_b_{s}" for s in "ABC"]
    assert len({r.group for r in refs[2:]}) == 1
    eps = [load_episode(r) for r in refs]
    assert [e.label for e in eps] == [5, 2, 3, 1, 5]
    assert [e.video.name for e in eps] == [
        "left_shoulder.mp4", "left_shoulder.mp4", "pi0_fast_2025_03_01_12_00_00_video_left.mp4",
        "paligemma_2025_03_01_12_00_01_video_left.mp4", "dp_2025_03_01_12_00_02_video_left.mp4",
    ]  # fmt: skip
    wrist = load_episode(refs[4], ReaderOptions(camera="wrist"))
    assert wrist.video.name == "dp_2025_03_01_12_00_02_video_wrist.mp4"
    assert load_episode(refs[3], ReaderOptions(camera="right_shoulder")).video.name.endswith("_video_right.mp4")


def test_roboarena_policy_in_metadata_without_folder_is_reported_not_lost(tmp_path):
    import yaml

    sdir = _arena_session(tmp_path, "s", {"A": ("pi0", 1.0), "B": ("octo", 0.3)}, layout="2025")
    meta = yaml.safe_load((sdir / "metadata.yaml").read_text())
    meta["policies"]["C"] = {"policy_name": "gone", "partial_success": 0.5}
    (sdir / "metadata.yaml").write_text(yaml.safe_dump(meta))
    refs = list(list_source(f"roboarena:{tmp_path}"))
    assert [r.id for r in refs] == ["s_A", "s_B", "s_C"]
    with pytest.raises(SourceError, match=r"s_C: C_<policy>: no video folder"):
        load_episode(refs[2])


def test_roboarena_strict_scores_safe_yaml_and_colliding_session_names(tmp_path):
    import time

    sdir = _arena_session(tmp_path, "s 1", {"A": ("pi0", 1.0), "B": ("octo", 0.3)}, layout="cameras")
    _arena_session(tmp_path, "s_1", {"A": ("pi0", 1.0), "B": ("octo", 0.3)}, layout="cameras")
    text = (sdir / "metadata.yaml").read_text()
    (sdir / "metadata.yaml").write_text(text.replace("partial_success: 0.3", "partial_success: yes"))
    refs = list(list_source(f"roboarena:{tmp_path}"))
    ids = [r.id for r in refs]
    assert len(set(ids)) == 4 and ids[2:] == ["s_1_A", "s_1_B"] and ids[0].startswith("s_1_") and ids[0] != ids[2]
    assert refs[0].group != refs[2].group
    with pytest.raises(SourceError, match=r"policies\.B\.partial_success: True is not a number"):
        load_episode(refs[1])
    # a billion-laughs metadata.yaml is refused quickly, and the error quotes little of it
    lol = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lol += [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    (sdir / "metadata.yaml").write_text("\n".join(lol) + "\nlanguage_instruction: *i\npolicies: {A: *i}\n")
    t = time.perf_counter()
    assert [r.id for r in list_source(f"roboarena:{tmp_path}")][:2] == ids[:2]
    with pytest.raises(SourceError) as err:
        load_episode(refs[0])
    assert time.perf_counter() - t < 5
    assert err.value.field == "metadata.yaml" and "aliases" in str(err.value) and len(str(err.value)) < 500


# ------------------------------------------------------------------------------------------------ released layout


def test_released_layout_groups_kinds_and_shared_videos(tmp_path):
    import json

    from roboreward.video import write_video

    rows = {
        "train": [
            {"file_name": "bridge/ep_7.mp4", "task": "put the pot on the stove", "reward": 5},
            {"file_name": "bridge/ep_7.mp4", "task": "put the pot in the sink", "reward": 1},
            {"file_name": "bridge/ep_9.mp4", "task": "open the door", "reward": 5},
        ],
        "test": [{"file_name": "bridge/ep_7_attempt_2_score_2.mp4", "task": "put the pot on the stove", "reward": 2}],
    }
    for split, rs in rows.items():
        (tmp_path / split / "bridge").mkdir(parents=True)
        (tmp_path / split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
        for r in rs:
            write_video(tmp_path / split / r["file_name"], episode_frames(3, 1, h=32, w=48), 10)
    refs = list(list_source(f"released:{tmp_path}"))
    by_id = {r.id: r for r in refs}
    assert sorted(by_id) == ["ep_7", "ep_7_attempt_2_score_2", "ep_9"]  # one ref per video, not per row
    assert by_id["ep_7"].group == by_id["ep_7_attempt_2_score_2"].group != by_id["ep_9"].group
    ep = load_episode(by_id["ep_7"])
    assert [r["task"] for r in ep.meta["released_rows"]] == ["put the pot on the stove", "put the pot in the sink"]
    assert {r["episode_id"] for r in ep.meta["released_rows"]} == {"bridge/ep_7"}  # written back: kept on rebuild
    clip = load_episode(by_id["ep_7_attempt_2_score_2"]).meta["released_row"]
    assert clip["kind"] == "clipped" and clip["episode_id"] == "bridge/ep_7" and clip["reward"] == 2
    assert load_episode(by_id["ep_9"]).meta["released_row"]["kind"] == "original"
    test = list(list_source(f"released:{tmp_path}", ReaderOptions(source_split="test")))
    assert [r.id for r in test] == ["ep_7_attempt_2_score_2"]


def test_build_keeps_released_grouping_and_shared_videos_and_reports_listing_problems(tmp_path):
    import json
    import shutil

    from roboreward.dataset import available_splits, build_dataset, read_split
    from roboreward.video import write_video

    src = tmp_path / "release"
    rows = []
    for e in range(6):  # six episodes: the original, a counterfactual sharing its video, a clip
        rows += [
            {"file_name": f"bridge/ep_{e}.mp4", "task": f"stack cup {e}", "reward": 5},
            {"file_name": f"bridge/ep_{e}.mp4", "task": f"topple cup {e}", "reward": 1},
            {"file_name": f"bridge/ep_{e}_attempt_1_score_2.mp4", "task": f"stack cup {e}", "reward": 2},
        ]
    (src / "train" / "bridge").mkdir(parents=True)
    (src / "train" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows:
        if not (src / "train" / r["file_name"]).exists():
            write_video(src / "train" / r["file_name"], episode_frames(4, 1, h=32, w=48), 10)
    bad = tmp_path / "lerobot"
    shutil.copytree(FIXTURES / "lerobot" / "av1", bad / "good")
    shutil.copytree(FIXTURES / "lerobot" / "av1", bad / "listy")
    (bad / "listy" / "meta" / "info.json").write_text("[]")

    def built(out: Path) -> list[dict]:
        return [r.data | {"split": s} for s in available_splits(out) for r in read_split(out, s)]

    first = tmp_path / "first"
    summary = build_dataset(
        [f"released:{src}", f"lerobot:{bad}"], first, clip_fractions="none", seed=3, show_progress=False
    )
    [problem] = summary.report["listing_skipped"]
    assert problem["source"] == "listy" and "expected a JSON dict" in problem["error"]
    got = [r for r in built(first) if r["source"] == "bridge"]
    assert len(got) == len(rows) and sorted(r["task"] for r in got) == sorted(r["task"] for r in rows)
    assert len({r["file_name"] for r in got}) == 12  # one copy per source video, shared by its two rows
    assert {r["kind"] for r in got if "_attempt_" in r["file_name"]} == {"clipped"}
    for rr in (got, [r for r in built(first) if r["source"] == "good"]):
        by_episode: dict[str, set[str]] = {}
        for r in rr:
            by_episode.setdefault(r["episode_id"], set()).add(r["split"])
        assert all(len(s) == 1 for s in by_episode.values()), by_episode
    assert len({r["episode_id"] for r in got}) == 6
    # a rebuild of the rebuilt dataset keeps each episode's rows together
    again = tmp_path / "again"
    build_dataset([f"released:{first}"], again, clip_fractions="none", seed=11, show_progress=False)
    regot = [r for r in built(again) if r["source"] == "bridge"]
    assert len(regot) == len(rows) and len({r["episode_id"] for r in regot}) == 6
    splits_of: dict[str, set[str]] = {}
    for r in regot:
        splits_of.setdefault(r["episode_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values()), splits_of
