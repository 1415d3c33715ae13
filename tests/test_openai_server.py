"""The test chat-completions server itself answers like the protocol says (and, strict, refuses what vLLM's
server refuses); the primed ``vllm:`` scoring request is checked against it, down to the prompt a chat template
makes of it and the p(1..5) a real (tiny) model gives at the primed position."""

import base64
import math

import httpx
import numpy as np
import pytest
from conftest import make_frames
from openai_server import ChatServer, chat_response, vllm_request_error

from roboreward.rubric import SCORES
from roboreward.scoring import sample_video
from roboreward.scoring.api import ApiError, ApiScorer, api_scorer_from_spec
from roboreward.video import read_video, write_video


def test_server_replies_and_records():
    def handler(req):
        if req["messages"][-1]["content"] == "fail":
            return 503, {"error": {"message": "busy"}}
        return chat_response("ANSWER: 3", top_logprobs=[{"3": -0.1, "4": -2.5}])

    with ChatServer(handler) as server:
        ok = httpx.post(
            f"{server.base_url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        )
        bad = httpx.post(
            f"{server.base_url}/chat/completions", json={"messages": [{"role": "user", "content": "fail"}]}
        )
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "ANSWER: 3"
    assert ok.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1] == {"token": "4", "logprob": -2.5}
    assert bad.status_code == 503 and len(server.requests) == 2


def test_strict_server_refuses_what_vllm_refuses():
    user = [{"role": "user", "content": "hi"}]
    primed = [*user, {"role": "assistant", "content": "ANSWER: "}]
    refused = {
        "both prompts": dict(messages=primed, continue_final_message=True),  # add_generation_prompt defaults to true
        "no assistant turn": dict(messages=user, continue_final_message=True, add_generation_prompt=False),
        "top without logprobs": dict(messages=user, top_logprobs=5),
        "too many": dict(messages=user, logprobs=True, top_logprobs=21),
        "no messages": dict(messages=[]),
    }
    fine = dict(
        messages=primed, continue_final_message=True, add_generation_prompt=False, logprobs=True, top_logprobs=20
    )
    assert vllm_request_error(fine) is None
    with ChatServer(lambda req: "4", strict=True) as server:
        for why, body in refused.items():
            resp = httpx.post(f"{server.base_url}/chat/completions", json=body)
            assert resp.status_code == 400 and resp.json()["error"]["code"] == 400, why
        assert httpx.post(f"{server.base_url}/chat/completions", json=fine).status_code == 200
    assert "continue_final_message" in vllm_request_error(refused["both prompts"])


# -- the primed (vllm:) scoring request ----------------------------------------------------------------------


def test_vllm_spec_builds_a_primed_scorer():
    api = api_scorer_from_spec("vllm:teetone/RoboReward-4B@http://gpu:8000/v1/", timeout=5, max_frames=4, min_frames=2)
    assert api.primed and api.video_mode == "video_url" and api.model == "teetone/RoboReward-4B"
    assert api.base_url == "http://gpu:8000/v1" and api.timeout == 5 and api.settings["primed"] is True
    plain = api_scorer_from_spec("openai:m@http://h/v1")
    assert not plain.primed and plain.video_mode == "frames" and "primed" not in plain.settings
    assert api_scorer_from_spec("teetone/RoboReward-4B") is None and api_scorer_from_spec("tiny") is None
    for bad in ("vllm:", "vllm:m@"):
        with pytest.raises(ValueError, match="vllm:<model>@<base_url>"):
            api_scorer_from_spec(bad)
    with pytest.raises(ValueError, match="top_logprobs"):
        ApiScorer(model="m", primed=True, logprobs=False)
    frames = make_frames(4)
    assert "mm_processor_kwargs" not in api.request_body(frames, "x")  # sent only when given
    kw = ApiScorer(model="m", primed=True, mm_processor_kwargs={"do_sample_frames": False}).request_body(frames, "x")
    assert kw["mm_processor_kwargs"] == {"do_sample_frames": False} and vllm_request_error(kw) is None


def _template_messages(messages: list[dict]) -> list[dict]:
    """What a chat template sees of OpenAI messages: media parts become placeholders, as in vLLM's chat parsing."""
    kinds = {"image_url": "image", "video_url": "video"}
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            content = [
                {"type": "text", "text": p["text"]} if p["type"] == "text" else {"type": kinds[p["type"]]}
                for p in content
            ]
        out.append({"role": m["role"], "content": content})
    return out


def _decode_video_url(messages: list[dict]):
    (part,) = [p for p in messages[0]["content"] if p["type"] == "video_url"]
    data = base64.b64decode(part["video_url"]["url"].split(",", 1)[1])
    return read_video(data, num_frames=read_video(data, num_frames=1).total_frames)


class TinyVLLM:
    """A stand-in for ``vllm serve <tiny reward model>``: renders the request with the model's chat template the
    way vLLM does (``continue_final_message`` / ``add_generation_prompt``), runs the model on the decoded video
    and answers one token with its top logprobs (over the whole vocabulary). A trained checkpoint puts the five
    digits in its top 20; the random tiny one does not, so this one always lists them beside the top others."""

    def __init__(self, rm) -> None:
        from roboreward.scoring import vlm

        self.rm, self.vlm = rm, vlm
        self.prompts: list[str] = []
        self.videos: list = []

    def __call__(self, req: dict) -> dict:
        import torch

        proc, tok = self.rm.processor, self.rm.processor.tokenizer
        prompt = proc.apply_chat_template(
            _template_messages(req["messages"]),
            tokenize=False,
            add_generation_prompt=req.get("add_generation_prompt", True),
            continue_final_message=req.get("continue_final_message", False),
        )
        video = _decode_video_url(req["messages"])
        self.prompts.append(prompt)
        self.videos.append(video)
        batch = self.vlm.encode(proc, self.rm.family, [prompt], [video])
        with torch.no_grad():
            logprobs = torch.log_softmax(self.rm.model(**batch).logits[0, -1].float(), -1)
        digits = [tok.convert_tokens_to_ids(str(s)) for s in SCORES]
        top = torch.topk(logprobs, req["top_logprobs"]).indices.tolist()
        others = [i for i in top if tok.decode([i]).strip() not in {str(s) for s in SCORES}]
        listed = (digits + others)[: req["top_logprobs"]]
        alternatives = {tok.decode([i]): float(logprobs[i]) for i in listed}
        return chat_response(tok.decode([int(logprobs.argmax())]), top_logprobs=[alternatives])


def test_primed_request_gives_the_local_prompt_and_distribution(tiny_qwen3_vl, tmp_path):
    """The vllm: request, rendered by the model's chat template as vLLM renders it, is exactly the local scorer's
    prompt (primed with ANSWER:), and the p(1..5) read from the one-token reply is the local softmax over 1..5."""
    from roboreward.scoring import RewardModel, vlm

    video = write_video(tmp_path / "v.mp4", make_frames(20, seed=4), fps=10)
    rm = RewardModel(tiny_qwen3_vl, fps=2.0, max_frames=4, min_frames=2)
    server_model = TinyVLLM(rm)
    with ChatServer(server_model, strict=True) as server:
        api = api_scorer_from_spec(f"vllm:tiny@{server.base_url}", fps=2.0, max_frames=4, min_frames=2, max_retries=0)
        out = api.score(video, "put the cup in the sink")
        (req,) = server.requests
    assert req["messages"][-1] == {"role": "assistant", "content": "ANSWER: "}
    assert req["continue_final_message"] is True and req["add_generation_prompt"] is False
    assert req["max_tokens"] == 1 and req["logprobs"] is True and req["top_logprobs"] == 20 and req["temperature"] == 0
    (prompt,) = server_model.prompts
    assert prompt == vlm.prompt_text(rm.processor, "put the cup in the sink") and prompt.endswith("ANSWER: ")
    (seen,) = server_model.videos  # the frames the server got: the scorer's sampled frames, through H.264
    assert len(seen.frames) == len(sample_video(video, api.sampling).frames) == 4
    # the local scorer's distribution on those frames, computed apart from the server
    import torch

    batch = vlm.encode(rm.processor, rm.family, [vlm.prompt_text(rm.processor, "put the cup in the sink")], [seen])
    with torch.no_grad():
        logits = rm.model(**batch).logits[0, -1]
    local = torch.softmax(logits[rm.score_ids].float(), -1).numpy()
    np.testing.assert_allclose(out.probs, local, rtol=1e-5, atol=1e-7)
    assert out.score == int(np.argmax(local)) + 1 and out.raw_text.startswith("ANSWER: ")
    assert math.isclose(sum(out.probs), 1.0)


def test_primed_reply_without_digits_falls_back_to_the_text(tmp_path):
    frames = make_frames(4)
    with ChatServer(lambda req: chat_response("\n", top_logprobs=[{"\n": -0.1, "The": -3.0}]), strict=True) as server:
        out = ApiScorer(model="m", base_url=server.base_url, primed=True, max_retries=0).score(frames, "x")
    assert out.parsed is False and out.score == 1 and out.raw_text == "ANSWER: \n"
    top_not_digit = chat_response("\n", top_logprobs=[{"\n": math.log(0.5), "3": math.log(0.3), " 4": math.log(0.2)}])
    with ChatServer(lambda req: top_not_digit, strict=True) as server:
        out = ApiScorer(model="m", base_url=server.base_url, primed=True, max_retries=0).score(frames, "x")
    assert out.probs == pytest.approx([0, 0, 0.6, 0.4, 0]) and out.score == 3  # read at the primed position
    with ChatServer(lambda req: "4", strict=True) as server:  # a body vLLM refuses is a clear error, not retried
        bad = ApiScorer(model="m", base_url=server.base_url, primed=True, top_logprobs=50, max_retries=3)
        with pytest.raises(ApiError, match="HTTP 400.*greater than max allowed"):
            bad.score(frames, "x")
        assert len(server.requests) == 1


def test_score_cli_with_the_vllm_spec(tmp_path):
    """`roboreward score` on one video and on a folder, against a vLLM-strict server, through the vllm: spec."""
    import json

    from typer.testing import CliRunner

    from roboreward.cli import app

    clips = tmp_path / "clips"
    for i in range(3):
        write_video(clips / f"c{i}.mp4", make_frames(10, seed=i), fps=10)
    reply = chat_response("4", top_logprobs=[{"4": math.log(0.6), "3": math.log(0.3), "5": math.log(0.1), "\n": -9.0}])
    with ChatServer(lambda req: reply, strict=True) as server:
        spec = f"vllm:teetone/RoboReward-4B@{server.base_url}"
        one = CliRunner().invoke(app, ["score", str(clips / "c0.mp4"), "open the drawer", "--model", spec, "--json"])
        assert one.exit_code == 0, one.output
        many = CliRunner().invoke(
            app, ["score", str(clips), "open the drawer", "--model", spec, "--out", str(tmp_path / "s.jsonl")]
        )
        assert many.exit_code == 0, many.output
        bodies = list(server.requests)
    result = json.loads(one.stdout)
    assert result["probs"] == pytest.approx([0, 0, 0.3, 0.6, 0.1]) and result["score"] == 4
    assert result["settings"]["primed"] is True and result["settings"]["video_mode"] == "video_url"
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["score"] == 4 for r in rows) and len(bodies) == 4
    assert all(b["continue_final_message"] and b["max_tokens"] == 1 for b in bodies)
    assert {b["model"] for b in bodies} == {"teetone/RoboReward-4B"}
