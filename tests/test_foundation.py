"""The shared pieces: rubric/prompt, answer parsing, video I/O, released-layout reading, tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_frames

from roboreward.dataset import DatasetFormatError, read_split, safe_join, subset_of
from roboreward.rubric import (
    answer_text,
    check_score,
    parse_answer,
    progress_to_label,
    reward_prompt,
    simulator_progress,
)
from roboreward.video import VideoDecodeError, probe, read_video, sample_indices, write_video


def test_prompt_matches_released_model_card():
    text = reward_prompt("pick up the {red} cup")
    assert text.startswith(
        "Given the task, assign a discrete progress score reward (1,2,3,4,5) for the robot "
        "in the video in the format: ANSWER: <score>\n"
    )
    assert "5 - Perfect Completion: Final state satisfies all requirements.\n\nTask: pick up the {red} cup" in text
    assert text.endswith("Task: pick up the {red} cup")
    with pytest.raises(ValueError, match="empty"):
        reward_prompt("   ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ANSWER: 4", 4),
        ("answer:3", 3),
        ("The format is ANSWER: <score>. ANSWER: 2", 2),
        ("5", 5),
        ("  3 because", 3),
        ("I think it's 6", None),
        ("", None),
        (None, None),
        ("Answer: 9", None),
    ],
)
def test_parse_answer_helm_style(text, expected):
    assert parse_answer(text) == expected


def test_check_score_and_answer_text():
    assert check_score(3.0) == 3 and answer_text(5) == "ANSWER: 5"
    for bad in (0, 6, 2.5, float("nan"), "x", None):
        with pytest.raises(ValueError, match="reward"):
            check_score(bad)


def test_progress_bins():
    assert [progress_to_label(p) for p in (0, 19.9, 20, 45, 60, 79, 80, 100)] == [1, 1, 2, 3, 4, 4, 5, 5]
    assert progress_to_label(50, bins=(10, 20, 30, 90)) == 4
    with pytest.raises(ValueError, match="outside 0-100"):
        progress_to_label(101)


def test_simulator_progress_gives_label_5_only_to_a_simulator_success():
    labels = [progress_to_label(100 * simulator_progress(False, c)) for c in (-0.2, 0.1, 0.3, 0.5, 0.7, 0.99)]
    assert labels == [1, 1, 2, 3, 4, 4]
    assert simulator_progress(True, 0.2) == 1.0 and progress_to_label(100 * simulator_progress(True, 0.2)) == 5


def test_sample_indices_uniform_ends_on_last_frame():
    assert sample_indices(100, 10, num_frames=5) == [0, 25, 50, 74, 99]
    assert sample_indices(100, 10, fps=1.0, max_frames=32) == [int(round(x)) for x in np.linspace(0, 99, 10)]
    assert sample_indices(3, 10, num_frames=None, max_frames=8, min_frames=4) == [0, 1, 1, 2]
    with pytest.raises(ValueError, match="not both"):
        sample_indices(10, 10, num_frames=2, fps=1)


def test_video_roundtrip(tmp_path):
    frames = make_frames(20)
    path = write_video(tmp_path / "a" / "v.mp4", frames, fps=10)
    info = probe(path)
    assert (info.num_frames, info.width, info.height) == (20, 96, 64) and info.fps == pytest.approx(10)
    sampled = read_video(path, num_frames=4)
    assert sampled.frames.shape == (4, 64, 96, 3) and sampled.indices == [0, 6, 13, 19]
    # the moving square is where it should be in the last frame (lossy codec: loose tolerance)
    assert np.abs(sampled.frames[-1].astype(int) - frames[19].astype(int)).mean() < 8
    assert read_video(path.read_bytes(), num_frames=2).frames.shape[0] == 2


def test_bad_videos_raise_clear_errors(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    for name, msg in [("empty.mp4", "empty"), ("junk.mp4", "junk.mp4"), ("missing.mp4", "no such")]:
        with pytest.raises(VideoDecodeError, match=msg):
            read_video(tmp_path / name)
    with pytest.raises(VideoDecodeError, match="no frames"):
        read_video(np.zeros((0, 8, 8, 3), np.uint8))


def _write_release(root, rows):
    (root / "test").mkdir(parents=True, exist_ok=True)
    with open(root / "test" / "metadata.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def test_read_released_layout(tmp_path):
    write_video(tmp_path / "test" / "robo_arena" / "a.mp4", make_frames(4), fps=10)
    _write_release(
        tmp_path, [{"file_name": "robo_arena/a.mp4", "task": "open drawer", "reward": 3, "gpt5_mini_check": "ok"}]
    )
    (row,) = read_split(tmp_path, "test")
    assert row.subset == "robo_arena" and row.reward == 3 and row.video_path.is_file()
    assert row.data["gpt5_mini_check"] == "ok"
    assert subset_of("bridge/x/y.mp4") == "bridge"


@pytest.mark.parametrize(
    ("row", "msg"),
    [
        ({"file_name": "../../etc/passwd", "task": "t", "reward": 1}, "escapes"),
        ({"file_name": "/etc/passwd", "task": "t", "reward": 1}, "absolute"),
        ({"file_name": "x/a.mp4", "task": "t", "reward": 7}, "outside 1..5"),
        ({"file_name": "x/a.mp4", "reward": 2}, "missing required column"),
        ({"file_name": "x/missing.mp4", "task": "t", "reward": 2}, "not found"),
    ],
)
def test_read_split_rejects_bad_rows(tmp_path, row, msg):
    _write_release(tmp_path, [row])
    with pytest.raises(DatasetFormatError, match=msg) as info:
        read_split(tmp_path, "test")
    assert "metadata.jsonl:1" in str(info.value)
    with pytest.raises(DatasetFormatError, match="escapes"):
        safe_join(tmp_path, "a/../../b")


def test_tiny_models_use_real_qwen_vocabulary(tiny_qwen3_vl):
    from transformers import AutoConfig, AutoProcessor

    proc = AutoProcessor.from_pretrained(tiny_qwen3_vl)
    tok = proc.tokenizer
    assert tok.convert_tokens_to_ids(["<|im_start|>", "<|vision_start|>", "<|image_pad|>", "<|video_pad|>"]) == [
        151644,
        151652,
        151655,
        151656,
    ]
    ids = tok("ANSWER: 4", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "ANSWER: 4" and len(ids) < 6
    assert AutoConfig.from_pretrained(tiny_qwen3_vl).model_type == "qwen3_vl"
    assert (tiny_qwen3_vl / "model.safetensors").is_file()


def test_package_data_covers_every_non_python_file():
    """A wheel install ships what the package reads at run time: every non-Python file under roboreward/
    (prompts, the model card template, the bundled sample) matches a package-data glob of pyproject.toml."""
    import tomllib
    from pathlib import Path

    from roboreward.training import card as model_card

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["roboreward"]
    package = root / "roboreward"
    shipped = {p for g in globs for p in package.glob(g) if p.is_file()}
    needed = {p for p in package.rglob("*") if p.is_file() and p.suffix not in {".py", ".pyc"}}
    assert needed and not (needed - shipped), sorted(str(p.relative_to(package)) for p in needed - shipped)
    assert model_card.DEFAULT_TEMPLATE in shipped


@pytest.mark.parametrize("gop", [1, 7, 250])
def test_pyav_fallback_seeks_to_the_same_frames_as_torchcodec(tmp_path, monkeypatch, gop):
    """The PyAV fallback (seek to the keyframe before each frame, B-frames on) returns exactly torchcodec's frames,
    from a path and from bytes, for sparse and dense sampling."""
    import av

    from roboreward import video as video_mod

    path = tmp_path / f"gop{gop}.mp4"
    frames = make_frames(60, 48, 64)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "bf": "2"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for k in (3, 16, 60):
        ref = read_video(path, num_frames=k)
        monkeypatch.setenv("ROBOREWARD_DECODER", "pyav")
        for src in (path, path.read_bytes()):
            got = read_video(src, num_frames=k)
            assert got.indices == ref.indices and np.array_equal(got.frames, ref.frames)
        idx = [59, 0, 30, 30, 75]  # unsorted, repeated, past the end (a container that over-reports its count)
        seek = video_mod._decode_pyav_seek(str(path), idx)
        forward = video_mod._decode_pyav_forward(str(path), idx)
        assert all(np.array_equal(a, b) for a, b in zip(seek, forward, strict=True))
        monkeypatch.delenv("ROBOREWARD_DECODER")


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_video_processor_gets_metadata_and_the_reference_pixel_cap(family):
    """Frames are already sampled (no resampling), timing comes from the video, and the per-frame pixel cap of
    the reference Qwen pipeline is asked for explicitly (transformers' legacy resize otherwise, with a warning)."""
    from roboreward.scoring import vlm
    from roboreward.scoring.tiny import tiny_processor

    sampled = read_video(make_frames(10, 48, 64), num_frames=4)
    kwargs = vlm.video_kwargs(family, [sampled], tiny_processor(family))
    assert kwargs["do_sample_frames"] is False and kwargs["cap_pixels_per_frame"] is vlm.CAP_PIXELS_PER_FRAME is True
    assert len(kwargs["video_metadata"]) == 1
    assert "cap_pixels_per_frame" not in vlm.video_kwargs(family, [sampled])  # a processor we cannot inspect


def test_tiny_spec_has_one_parser(tmp_path, monkeypatch):
    """`tiny` / `tiny:<family>` is parsed in one place (scoring, training and the demo resolve it there)."""
    from roboreward.scoring import TINY_FAMILIES, parse_tiny_spec, resolve_tiny

    assert parse_tiny_spec("tiny") == parse_tiny_spec("tiny:") == "qwen3_vl" == TINY_FAMILIES[0]
    assert parse_tiny_spec(" tiny:qwen2_5_vl ") == "qwen2_5_vl"
    for other in ("teetone/RoboReward-4B", "openai:m@http://x/v1", "./tiny", "tinyllama"):
        assert parse_tiny_spec(other) is None and resolve_tiny(other) is None
    with pytest.raises(ValueError, match=r"'tiny:llama'.*tiny:qwen3_vl and tiny:qwen2_5_vl"):
        parse_tiny_spec("tiny:llama")
    built = []
    monkeypatch.setattr("roboreward.scoring.tiny.build_tiny_model", lambda out, family: built.append(family) or out)
    monkeypatch.setenv("ROBOREWARD_CACHE", str(tmp_path))
    assert resolve_tiny("tiny:qwen2_5_vl") == tmp_path / "tiny-qwen2-5-vl" and built == ["qwen2_5_vl"]


def test_scorer_sampling_comes_from_frame_sampling():
    """Scorers take a FrameSampling or its fields as kwargs (None = not given); the defaults are FrameSampling's."""
    from roboreward.sampling import FrameSampling
    from roboreward.scoring import resolve_sampling, sample_video

    assert resolve_sampling() == FrameSampling()
    assert resolve_sampling(fps=None, max_frames=None) == FrameSampling()
    assert resolve_sampling(FrameSampling(fps=1.0), max_frames=16) == FrameSampling(fps=1.0, max_frames=16)
    assert resolve_sampling(num_frames=6).as_dict() == {"fps": None, "max_frames": 8, "min_frames": 4, "num_frames": 6}
    # a max below the default minimum lowers the minimum with it (scorers always accepted --max-frames 2) ...
    assert resolve_sampling(max_frames=2) == FrameSampling(max_frames=2, min_frames=2)
    # ... but an explicit contradiction is refused
    with pytest.raises(ValueError, match="min_frames <= max_frames"):
        resolve_sampling(max_frames=2, min_frames=3)
    frames = make_frames(40, 16, 16)  # 4 s at the default 10 fps of bare frame arrays
    assert len(sample_video(frames).frames) == 8  # 2 fps x 4 s, clamped to 8
    assert len(sample_video(frames, FrameSampling(fps=0.5)).frames) == 4  # 2 frames, raised to min_frames 4
    assert len(sample_video(frames, FrameSampling(fps=0.5), num_frames=3).frames) == 3


def test_api_specs_go_to_the_api_scorer():
    from roboreward.scoring import ApiScorer, is_api_spec, load_scorer

    assert is_api_spec("openai:m@http://x/v1") and is_api_spec("vllm:m@http://x/v1")
    assert not is_api_spec("teetone/RoboReward-4B") and not is_api_spec(None) and not is_api_spec("tiny")
    scorer = load_scorer("vllm:teetone/RoboReward-4B@http://gpu:8000/v1", timeout=3)
    assert isinstance(scorer, ApiScorer) and scorer.primed and scorer.base_url == "http://gpu:8000/v1"
    with pytest.raises(ValueError):
        load_scorer("vllm:m@")
