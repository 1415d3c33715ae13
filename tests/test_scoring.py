"""Scoring: tiny real Qwen-VL models end to end, the OpenAI-compatible API scorer against a real local HTTP
server, progress curves, load_scorer and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make_frames
from openai_server import ChatServer, chat_response

from roboreward.rubric import SCORES
from roboreward.scoring import (
    ApiError,
    ApiScorer,
    Frames,
    RewardModel,
    load_scorer,
    probs_from_top_logprobs,
    progress_curve,
)
from roboreward.types import RewardOutput, Scorer
from roboreward.video import VideoDecodeError, write_video

TINY_KW = dict(fps=2.0, max_frames=4, min_frames=2)


@pytest.fixture(scope="module")
def models(tiny_qwen3_vl, tiny_qwen2_5_vl):
    return {
        "qwen3_vl": RewardModel(tiny_qwen3_vl, batch_size=3, **TINY_KW),
        "qwen2_5_vl": RewardModel(tiny_qwen2_5_vl, batch_size=3, **TINY_KW),
    }


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return [
        write_video(d / "a.mp4", make_frames(20, seed=0), fps=10),
        write_video(d / "b.mp4", make_frames(9, seed=1), fps=10),
        write_video(d / "c.mp4", make_frames(40, seed=2), fps=5),
        write_video(d / "one.mp4", make_frames(1, seed=3), fps=10),
    ]


def _manual_probs(rm: RewardModel, video, instruction: str) -> np.ndarray:
    """Full forward (all positions' logits), softmax over "1".."5" at the last position."""
    import torch

    from roboreward.scoring import vlm

    batch = vlm.encode(rm.processor, rm.family, [vlm.prompt_text(rm.processor, instruction)], [rm.sample(video)])
    with torch.no_grad():
        logits = rm.model(**batch).logits[0, -1]
    ids = [rm.processor.tokenizer.convert_tokens_to_ids(str(s)) for s in SCORES]
    return torch.softmax(logits[ids].float(), -1).numpy()


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_reward_model_end_to_end_from_mp4(models, videos, family):
    rm = models[family]
    assert isinstance(rm, Scorer) and rm.family == family
    instructions = ["pick up the red cup", "open the top drawer of the cabinet", "push the block left", "wipe"]
    batched = rm.score_batch(videos, instructions)  # batch_size 3: one full batch + one of 1, mixed lengths
    singles = [rm.score(v, t) for v, t in zip(videos, instructions, strict=True)]
    for b, s, v, t in zip(batched, singles, videos, instructions, strict=True):
        assert len(b.probs) == 5 and math.isclose(sum(b.probs), 1.0, abs_tol=1e-6)
        assert b.score == 1 + int(np.argmax(b.probs))
        assert b.expected == pytest.approx(float(np.dot(b.probs, SCORES)))
        assert 1.0 <= b.expected <= 5.0 and b.parsed
        np.testing.assert_allclose(b.probs, s.probs, atol=1e-5)  # left padding: batch == one-by-one
        np.testing.assert_allclose(b.probs, _manual_probs(rm, v, t), atol=1e-5)
    # different inputs give different distributions (the comparison above is not vacuous)
    assert max(abs(a - b) for a, b in zip(batched[0].probs, batched[1].probs, strict=True)) > 1e-5


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
@pytest.mark.parametrize("n_frames", [1, 3])
def test_very_short_videos_are_padded(models, tmp_path, family, n_frames):
    rm = models[family]
    path = write_video(tmp_path / "short.mp4", make_frames(n_frames), fps=10)
    for video in (path, path.read_bytes(), make_frames(n_frames)):
        out = rm.score(video, "close the drawer")
        assert math.isclose(sum(out.probs), 1.0, abs_tol=1e-6)
    assert len(rm.sample(path).frames) >= rm.sampling.min_frames
    saved = rm.sampling
    rm.sampling = saved.replace(num_frames=n_frames, min_frames=1)  # an odd or single-frame clip reaches it as is
    try:
        assert len(rm.sample(path).frames) == n_frames
        assert math.isclose(sum(rm.score(path, "close the drawer").probs), 1.0, abs_tol=1e-6)
    finally:
        rm.sampling = saved


def test_reward_model_bad_input(models, tmp_path):
    rm = models["qwen3_vl"]
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        rm.score(tmp_path / "missing.mp4", "x")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        rm.score(tmp_path / "junk.mp4", "x")
    with pytest.raises(ValueError, match="2 videos but 1 instructions"):
        rm.score_batch([make_frames(4), make_frames(4)], ["x"])
    with pytest.raises(ValueError, match="instruction is empty"):
        rm.score(make_frames(4), "  ")


def test_settings_record_sampling(models):
    s = models["qwen2_5_vl"].settings
    assert s["fps"] == 2.0 and s["max_frames"] == 4 and s["family"] == "qwen2_5_vl"


def test_reward_model_takes_a_frame_sampling(models, tiny_qwen3_vl, videos):
    from roboreward.sampling import FrameSampling

    sampling = FrameSampling(**TINY_KW)
    rm = load_scorer(str(tiny_qwen3_vl), sampling=sampling)
    assert rm.sampling == sampling == models["qwen3_vl"].sampling
    assert rm.settings == {**models["qwen3_vl"].settings, "model": str(tiny_qwen3_vl)}
    assert rm.score(videos[2], "x").probs == pytest.approx(models["qwen3_vl"].score(videos[2], "x").probs, abs=1e-5)
    exact = RewardModel(rm.model, processor=rm.processor, sampling=sampling, num_frames=3)  # kwargs refine it
    assert exact.sampling == FrameSampling(num_frames=3, max_frames=4, min_frames=2)
    assert len(exact.sample(videos[2]).frames) == 3 and exact.settings["fps"] is None


class _FrameCounter:
    """A fake scorer whose expected score grows with the number of frames it sees."""

    name = "counter"

    def __init__(self, constant: bool = False) -> None:
        self.constant = constant
        self.seen: list[tuple[int, float]] = []

    def score(self, video, instruction):
        return self.score_batch([video], [instruction])[0]

    def score_batch(self, videos, instructions):
        out = []
        for v in videos:
            self.seen.append((len(v), getattr(v, "fps", None)))
            e = 3.0 if self.constant else 1.0 + min(len(v), 40) / 10
            out.append(RewardOutput(score=round(e), probs=None, expected=e))
        return out


def test_progress_curve_generic_scorer(videos):
    fake = _FrameCounter()
    curve = progress_curve(fake, videos[0], "stack the cups", num_points=4)  # 20 frames at 10 fps
    assert curve.times == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert curve.fractions == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [n for n, _ in fake.seen] == [5, 10, 15, 20] and all(fps == 10 for _, fps in fake.seen)
    assert curve.voc == pytest.approx(1.0)
    assert curve.progress == pytest.approx([(e - 1) / 4 for e in curve.expected])
    flat = progress_curve(_FrameCounter(constant=True), videos[0], "x", num_points=4)
    assert flat.voc == 0.0  # undefined correlation -> 0
    # more points than frames: duplicates collapse; fps of a Frames array is kept
    short = progress_curve(fake, Frames(make_frames(3), fps=3), "x", num_points=8)
    assert short.times == pytest.approx([1 / 3, 2 / 3, 1.0])
    json.dumps(curve.to_dict())


def test_progress_curve_decodes_a_bounded_proxy_of_long_videos(videos, monkeypatch):
    import roboreward.scoring.curve as S

    monkeypatch.setattr(S, "CURVE_MAX_FRAMES", 5)  # a 20-frame, 2 s video stands in for a long one
    fake = _FrameCounter()
    curve = progress_curve(fake, videos[0], "x", num_points=5)
    assert [n for n, _ in fake.seen] == [1, 2, 3, 4, 5]  # never more than the bound reaches a scorer
    assert all(fps == pytest.approx(2.5) for _, fps in fake.seen)  # 5 frames over 2 s of video
    assert curve.times[-1] == pytest.approx(2.0)  # the curve still ends at the video's duration


def test_progress_curve_on_tiny_model(models, videos):
    curve = progress_curve(models["qwen3_vl"], videos[0], "pick up the cup", num_points=3)
    assert len(curve.outputs) == 3 and -1.0 <= curve.voc <= 1.0
    assert all(math.isclose(sum(o.probs), 1.0, abs_tol=1e-6) for o in curve.outputs)


def test_load_scorer_specs(tiny_qwen2_5_vl):
    rm = load_scorer(str(tiny_qwen2_5_vl), max_frames=4)
    assert isinstance(rm, RewardModel) and rm.family == "qwen2_5_vl" and rm.sampling.max_frames == 4
    api = load_scorer("openai:Qwen/Qwen3-VL-8B-Instruct@http://gpu-node:8000/v1/", timeout=5)
    assert isinstance(api, ApiScorer) and api.model == "Qwen/Qwen3-VL-8B-Instruct"
    assert api.base_url == "http://gpu-node:8000/v1" and api.timeout == 5
    for bad in ("openai:", "openai:m@", "", "tiny:llama"):
        with pytest.raises(ValueError):
            load_scorer(bad)


# ------------------------------------------------------------------------------------------------ API scorer


def _logprob_response(probs: list[float], other_mass: float = 0.25) -> dict:
    """A vLLM-like completion of "ANSWER: k" whose score-token alternatives carry ``probs``."""
    alts = {str(s): math.log(p * (1 - other_mass)) for s, p in zip(SCORES, probs, strict=True)}
    alts["The"] = math.log(other_mass)
    best = str(1 + int(np.argmax(probs)))
    return chat_response(
        f"ANSWER: {best}",
        top_logprobs=[{"ANSWER": -0.01, "Answer": -5.0}, {":": -0.001}, {" ": -0.001}, alts],
    )


def test_api_scorer_matches_local_distribution(models, videos):
    rm = models["qwen3_vl"]
    local = rm.score(videos[0], "pick up the red cup")

    with ChatServer(lambda req: _logprob_response(local.probs)) as server:
        api = ApiScorer(model="fake", base_url=server.base_url, max_retries=0, **TINY_KW)
        out = api.score(videos[0], "pick up the red cup")
        req = server.requests[0]
    np.testing.assert_allclose(out.probs, local.probs, atol=1e-9)
    assert out.score == local.score and out.expected == pytest.approx(local.expected)
    assert req["logprobs"] is True and req["top_logprobs"] == 20 and req["temperature"] == 0.0
    content = req["messages"][0]["content"]
    images = [c for c in content if c["type"] == "image_url"]
    assert len(images) == len(api_frames(api, videos[0]))
    assert images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "Task: pick up the red cup" in content[-1]["text"]


def api_frames(api: ApiScorer, video) -> np.ndarray:
    from roboreward.scoring import sample_video

    return sample_video(video, fps=api.fps, max_frames=api.max_frames, min_frames=api.min_frames).frames


def test_api_scorer_text_answers_and_batch_order(videos):
    def handler(req):
        task = req["messages"][0]["content"][-1]["text"].rsplit("Task:", 1)[-1].strip()
        return {"score three": "Reasoning... ANSWER: 3", "score five": "5", "nonsense": "I cannot tell."}[task]

    with ChatServer(handler) as server:
        api = ApiScorer(model="m", base_url=server.base_url, concurrency=3, **TINY_KW)
        outs = api.score_batch([videos[0]] * 4, ["score three", "score five", "nonsense", "score three"])
    assert [o.score for o in outs] == [3, 5, 1, 3]
    assert [o.parsed for o in outs] == [True, True, False, True]
    assert outs[0].probs is None and outs[0].expected == 3.0 and outs[2].raw_text == "I cannot tell."


def test_api_scorer_retries_and_errors(videos):
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        return (503, {"error": {"message": "overloaded"}}) if calls["n"] <= 2 else "ANSWER: 2"

    frames = make_frames(4)
    with ChatServer(flaky) as server:
        out = ApiScorer(model="m", base_url=server.base_url, backoff=0.01, max_retries=3).score(frames, "x")
    assert out.score == 2 and calls["n"] == 3

    with ChatServer(lambda req: (400, {"error": {"message": "bad model"}})) as server:
        with pytest.raises(ApiError, match="HTTP 400.*bad model"):
            ApiScorer(model="m", base_url=server.base_url, backoff=0.01).score(frames, "x")
        assert len(server.requests) == 1  # client errors are not retried

    with ChatServer(lambda req: "ANSWER: 4", delay=1.0) as server:
        slow = ApiScorer(model="m", base_url=server.base_url, timeout=0.2, max_retries=1, backoff=0.01)
        with pytest.raises(ApiError, match="gave up after 2 attempts"):
            slow.score(frames, "x")

    with ChatServer(lambda req: {"unexpected": True}) as server, pytest.raises(ApiError, match="not a chat completion"):
        ApiScorer(model="m", base_url=server.base_url).score(frames, "x")


def test_api_scorer_video_url_mode(videos):
    with ChatServer(lambda req: "ANSWER: 5") as server:
        api = ApiScorer(model="m", base_url=server.base_url, video_mode="video_url", logprobs=False, **TINY_KW)
        assert api.score(videos[1], "x").score == 5
        content = server.requests[0]["messages"][0]["content"]
    assert content[0]["type"] == "video_url" and content[0]["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert "logprobs" not in server.requests[0]
    with pytest.raises(ValueError, match="video_mode"):
        ApiScorer(model="m", video_mode="gif")


def test_probs_from_top_logprobs_edge_cases():
    # leading digit without ANSWER: (a model that answers just "4"); " 4" and "4" both count
    content = [
        {
            "token": "4",
            "logprob": -0.1,
            "top_logprobs": [
                {"token": "4", "logprob": math.log(0.5)},
                {"token": " 4", "logprob": math.log(0.25)},
                {"token": "2", "logprob": math.log(0.25)},
            ],
        }
    ]
    assert probs_from_top_logprobs(content) == pytest.approx([0, 0.25, 0, 0.75, 0])
    # a digit that is not the answer (e.g. "step 1") is skipped; no score token at all -> None
    text_only = [{"token": t, "logprob": -0.1, "top_logprobs": []} for t in ["Step", " ", "1", " done"]]
    assert probs_from_top_logprobs(text_only) is None
    # a verbose answer: digits among the first token's alternatives do not matter, the one after ANSWER: does
    verbose = [
        {
            "token": "The",
            "logprob": -0.1,
            "top_logprobs": [{"token": "The", "logprob": -0.1}, {"token": "5", "logprob": -3.0}],
        }
    ]
    verbose += [{"token": t, "logprob": -0.1, "top_logprobs": []} for t in [" gripper", " moved.", " Answer", ":"]]
    verbose += [
        {
            "token": " 2",
            "logprob": math.log(0.6),
            "top_logprobs": [{"token": " 2", "logprob": math.log(0.6)}, {"token": " 3", "logprob": math.log(0.2)}],
        }
    ]
    assert probs_from_top_logprobs(verbose) == pytest.approx([0, 0.75, 0.25, 0, 0])


def test_score_cli_json(tiny_qwen3_vl, videos):
    from typer.testing import CliRunner

    from roboreward.cli import app

    result = CliRunner().invoke(
        app, ["score", str(videos[0]), "pick up the cup", "--model", str(tiny_qwen3_vl), "--max-frames", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert math.isclose(sum(data["probs"]), 1.0, abs_tol=1e-6) and data["settings"]["max_frames"] == 4
    png = videos[0].parent / "curve.png"
    table = CliRunner().invoke(
        app, ["score", str(videos[0]), "wipe", "--model", str(tiny_qwen3_vl), "--curve", "2", "--plot", str(png)]
    )
    assert table.exit_code == 0 and "Perfect Completion" in table.output and "VOC" in table.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = CliRunner().invoke(app, ["score", "nope.mp4", "x", "--model", "tiny"])
    assert missing.exit_code == 1 and "no such video file" in missing.output
