"""Fuzzing the inputs of the builder, the scorer and the metric with hypothesis (derandomized, so CI is
reproducible): random bytes as video, truncated mp4s, zero frames, extreme dimensions, unicode and very long
instructions, NaN/inf predictions and logprobs. Each case must end in a clear error of the documented type or
a documented result, quickly: never a hang, never another exception, never a crash of the whole run."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_frames
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from roboreward.evaluation import metrics
from roboreward.rubric import parse_answer, reward_prompt
from roboreward.video import VideoDecodeError, probe, read_video, write_video

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SLOW = 20.0  # seconds: no single case may take longer (a hang would)

instructions = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300) | st.text(
    min_size=2000, max_size=20000
).map(lambda s: s + " pick up the cup")


@pytest.fixture(scope="module")
def mp4_bytes(tmp_path_factory) -> bytes:
    return write_video(tmp_path_factory.mktemp("fz") / "v.mp4", make_frames(12, 48, 64), fps=10).read_bytes()


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        assert time.perf_counter() - t0 < SLOW, f"{fn.__name__} took over {SLOW} s"


# ------------------------------------------------------------------------------------------------ video input


@FUZZ
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes_as_video_is_a_clear_error(data):
    for fn in (probe, read_video):
        try:
            out = _timed(fn, data)
        except VideoDecodeError as exc:
            assert str(exc)
        else:  # FFmpeg found a decodable stream in noise: then it must be a well-formed result
            frames = getattr(out, "frames", None)
            assert frames is None or (frames.ndim == 4 and frames.dtype == np.uint8)


@FUZZ
@given(cut=st.floats(0.0, 0.999), flip=st.integers(0, 10_000))
def test_truncated_or_damaged_mp4(mp4_bytes, cut, flip):
    data = bytearray(mp4_bytes[: int(len(mp4_bytes) * cut)])
    if data and flip % 2:
        data[flip % len(data)] ^= 0xFF  # one damaged byte as well
    try:
        v = _timed(read_video, bytes(data), num_frames=4)
    except VideoDecodeError as exc:
        assert str(exc)
    else:
        assert v.frames.shape[0] == 4 and v.frames.shape[-1] == 3 and v.frames.dtype == np.uint8


@FUZZ
@given(
    t=st.integers(0, 3),
    h=st.sampled_from([0, 1, 2, 3, 17, 4000]),
    w=st.sampled_from([0, 1, 2, 5, 30000]),
    c=st.sampled_from([1, 3, 4]),
)
def test_frame_arrays_of_any_shape(t, h, w, c, tmp_path_factory):
    assume(t * h * w * c <= 30_000_000)
    frames = np.zeros((t, h, w, c), np.uint8)
    try:
        v = _timed(read_video, frames, num_frames=2)
    except VideoDecodeError as exc:
        assert ("no frames" in str(exc) and t == 0) or ("shape" in str(exc) and c != 3)
        return
    assert t > 0 and c == 3 and v.frames.shape == (2, h, w, 3)
    # writing: even dimensions are required by H.264; too small is a clear error
    out = tmp_path_factory.mktemp("w") / "x.mp4"
    try:
        _timed(write_video, out, frames[:, : min(h, 64), : min(w, 64)], 10)
    except VideoDecodeError as exc:
        assert "too small" in str(exc) and (min(h, 64) < 2 or min(w, 64) < 2)


# ------------------------------------------------------------------------------------------------ the builder


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    cases=st.lists(
        st.tuples(st.sampled_from(["good", "random", "truncated", "empty"]), instructions, st.binary(max_size=512)),
        min_size=1,
        max_size=4,
    )
)
def test_builder_on_fuzzed_rows_builds_the_good_and_reports_the_bad(cases, mp4_bytes, tmp_path_factory):
    """A released-layout source whose videos are good, noise, truncated or empty, with any instruction."""
    from roboreward.dataset import available_splits, build_dataset, read_split

    assume(all(t.strip() for _, t, _ in cases))  # an empty task is a DatasetFormatError of the whole split
    root = tmp_path_factory.mktemp("src")
    rows = []
    for i, (kind, task, noise) in enumerate(cases):
        data = {
            "good": mp4_bytes,
            "random": noise or b"x",
            "truncated": mp4_bytes[: len(mp4_bytes) // 3],
            "empty": b"",
        }[kind]
        name = f"bridge/ep{i}.mp4"
        (root / "test" / "bridge").mkdir(parents=True, exist_ok=True)
        (root / "test" / name).write_bytes(data)
        rows.append({"file_name": name, "task": task, "reward": 1 + i % 5})
    (root / "test" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path_factory.mktemp("out") / "ds"
    summary = _timed(build_dataset, [f"released:{root}"], out, clip_fractions="none", show_progress=False)
    assert summary.episodes_built + summary.episodes_skipped == len(cases)
    for s in summary.report["skipped"]:
        assert s["field"] == "video" and s["episode"] in s["error"]
    built = [r.data for sp in available_splits(out) for r in read_split(out, sp)]
    assert len(built) == summary.episodes_built
    good = {f"bridge/ep{i}.mp4" for i, (k, _, _) in enumerate(cases) if k == "good"}
    assert good <= {r["file_name"] for r in built}  # every good row is built
    tasks = {r["file_name"]: r["task"] for r in built}
    for i, (_, task, _) in enumerate(cases):
        if f"bridge/ep{i}.mp4" in tasks:
            # unicode / long text kept; only surrounding and repeated whitespace is normalised
            assert tasks[f"bridge/ep{i}.mp4"].split() == task.split()


# ------------------------------------------------------------------------------------------------ the scorer


@FUZZ
@given(text=st.text(max_size=400) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_parse_answer_any_text(text):
    got = parse_answer(text)
    assert got is None or got in (1, 2, 3, 4, 5)


@FUZZ
@given(instruction=instructions)
def test_reward_prompt_keeps_any_instruction(instruction):
    prompt = reward_prompt(instruction)
    assert instruction.strip() in prompt or " ".join(instruction.split()) in prompt


logprob = st.floats(allow_nan=True, allow_infinity=True) | st.none()
token = st.sampled_from(["1", "2", " 3", "4", "5 ", "ANSWER", ":", "x", "", "６"]) | st.text(max_size=3)


@FUZZ
@given(
    content=st.lists(
        st.fixed_dictionaries(
            {"token": token, "logprob": logprob},
            optional={
                "top_logprobs": st.lists(st.fixed_dictionaries({"token": token, "logprob": logprob}), max_size=6)
            },
        ),
        max_size=6,
    )
)
def test_probs_from_logprobs_with_nan_inf(content):
    from roboreward.scoring import probs_from_top_logprobs

    probs = probs_from_top_logprobs(content)
    if probs is not None:
        assert len(probs) == 5 and all(math.isfinite(p) and p >= 0 for p in probs)
        assert abs(sum(probs) - 1) < 1e-9


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(instruction=instructions, frames=st.integers(1, 3))
def test_tiny_model_scores_any_instruction(tiny_qwen3_vl, instruction, frames):
    """The real scoring path (tiny Qwen3-VL): unicode and 20k-character instructions give a distribution."""
    from roboreward.scoring import RewardModel

    model = _model(tiny_qwen3_vl)
    out = _timed(model.score, make_frames(frames, 32, 32, seed=frames), instruction)
    assert out.score in (1, 2, 3, 4, 5) and abs(sum(out.probs) - 1) < 1e-4
    assert isinstance(model, RewardModel)


_MODELS: dict[Path, object] = {}


def _model(path: Path):
    from roboreward.scoring import RewardModel

    if path not in _MODELS:
        _MODELS[path] = RewardModel(path, num_frames=2)
    return _MODELS[path]


# ------------------------------------------------------------------------------------------------ the metric


score_like = (
    st.integers(-3, 9) | st.floats(allow_nan=True, allow_infinity=True) | st.none() | st.sampled_from(["3", "x", True])
)


@FUZZ
@given(preds=st.lists(score_like, max_size=12), refs=st.lists(st.integers(1, 5), max_size=12))
def test_metric_any_predictions(preds, refs):
    try:
        mae = metrics.mae(preds, refs)
    except ValueError as exc:
        assert str(exc)
        valid = len(preds) == len(refs) > 0 and all(
            p is None or (isinstance(p, int | float) and math.isfinite(p) and p == int(p) and 1 <= p <= 5)
            for p in preds
        )
        assert not valid, f"valid input refused: {exc}"
        return
    assert 0.0 <= mae <= 4.0 and len(preds) == len(refs) > 0
    assert not any(isinstance(p, float) and not math.isfinite(p) for p in preds)  # NaN/inf never slip through


@FUZZ
@given(preds=st.lists(st.one_of(st.integers(1, 5), st.none()), min_size=1, max_size=30), data=st.data())
def test_metric_valid_predictions_hand_check(preds, data):
    refs = data.draw(st.lists(st.integers(1, 5), min_size=len(preds), max_size=len(preds)))
    expected = sum(4 if p is None else abs(p - r) for p, r in zip(preds, refs, strict=True)) / len(preds)
    assert metrics.mae(preds, refs) == pytest.approx(expected)
