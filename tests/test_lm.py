"""LM backends and the call cache: the HTTP backend against a real local chat server (timeouts, 5xx, retries,
concurrency, video encoding), the transformers backend on tiny Qwen models built from configs."""

from __future__ import annotations

import base64
import json
import threading
import time

import numpy as np
import pytest
from conftest import make_frames
from openai_server import ChatServer, InFlight
from relabel_helpers import ScriptedLM

from roboreward.relabel import (
    CachedLM,
    LMCache,
    LMError,
    LMRequest,
    OpenAIChatLM,
    TransformersLM,
    content_key,
    hash_frames,
)
from roboreward.video import read_video


def _prompt_of(req: dict) -> str:
    content = req["messages"][-1]["content"]
    return content if isinstance(content, str) else content[-1]["text"]


# -- cache ---------------------------------------------------------------------------------------------------


def test_cache_roundtrip_atomic_and_corrupt_files(tmp_path):
    cache = LMCache(tmp_path / "c")
    key = content_key({"model": "m", "prompt": "hi"})
    assert key == content_key({"prompt": "hi", "model": "m"})  # canonical: key order does not matter
    assert cache.get(key) is None and key not in cache
    path = cache.put(key, "hello", {"prompt": "hi"})
    assert cache.get(key) == "hello" and cache.keys() == {key} and len(cache) == 1
    assert not list(path.parent.glob(".tmp-*"))  # no temp file left behind
    assert json.loads(path.read_text())["inputs"] == {"prompt": "hi"}
    path.write_text('{"version": 1, "key": "tr')  # a torn/corrupt file is a miss, not a crash
    assert cache.get(key) is None
    other = content_key("x")
    cache.put(other, "y")
    cache.path(other).write_text(json.dumps({"version": 1, "key": "someone-else", "text": "z"}))
    assert cache.get(other) is None


def test_cache_sweeps_old_temp_files_of_killed_writers(tmp_path):
    import os

    cache = LMCache(tmp_path / "c")
    key = content_key("k")
    cache.put(key, "v")
    old, fresh = cache.path(key).parent / ".tmp-old.json", cache.path(key).parent / ".tmp-fresh.json"
    old.write_text("{")
    fresh.write_text("{")  # maybe a live writer in another process: kept
    os.utime(old, (1, 1))
    reopened = LMCache(tmp_path / "c")
    assert not old.exists() and fresh.exists() and reopened.get(key) == "v"
    assert reopened.sweep_temp_files(max_age=-1) == 1 and not fresh.exists()


def test_cached_lm_asks_a_request_in_flight_in_another_thread_once(tmp_path):
    """Episodes relabeled on several threads ask some identical questions at the same moment: one call goes out,
    the other threads wait for its answer; a failed call reaches the waiters as a failure, and is retried later."""
    import time as _time

    from roboreward.relabel import LM

    class SlowLM(LM):
        name = "slow"
        supports_video = False

        def __init__(self) -> None:
            self.asked: list[str] = []
            self.fail = False

        def generate(self, request: LMRequest) -> str:
            self.asked.append(request.prompt)
            _time.sleep(0.3)
            if self.fail:
                raise LMError("server down")
            return f"answer to {request.prompt}"

    lm = SlowLM()
    cached = CachedLM(lm, LMCache(tmp_path))
    out: list = []
    barrier = threading.Barrier(4)

    def ask(prompt: str) -> None:
        barrier.wait()
        out.append(cached.generate(LMRequest(prompt)))

    threads = [threading.Thread(target=ask, args=("same question",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lm.asked == ["same question"] and cached.calls == 1
    assert [r.text for r in out] == ["answer to same question"] * 4 and sum(not r.cached for r in out) == 1
    lm.fail, out[:] = True, []
    threads = [threading.Thread(target=ask, args=("other question",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lm.asked.count("other question") == 1 and all(not r.ok and "server down" in r.error for r in out)
    lm.fail = False
    assert cached.generate(LMRequest("other question")).text == "answer to other question"  # errors not cached
    assert not cached._inflight


def test_frame_hash_sees_one_pixel():
    frames = make_frames(4)
    h = hash_frames(frames, [0, 1, 2, 3], 10.0)
    changed = frames.copy()
    changed[3, 0, 0, 0] ^= 1
    assert hash_frames(changed, [0, 1, 2, 3], 10.0) != h
    assert hash_frames(frames, [0, 1, 2, 4], 10.0) != h  # where the frames came from counts too
    assert hash_frames(frames.copy(), [0, 1, 2, 3], 10.0) == h


def test_cached_lm_hits_errors_and_duplicates(tmp_path):
    def reply(req):
        if req.prompt == "boom":
            raise LMError("server exploded")
        return req.prompt.upper()

    lm = ScriptedLM(reply)
    cached = CachedLM(lm, LMCache(tmp_path))
    out = cached.generate_batch([LMRequest("a"), LMRequest("b"), LMRequest("a"), LMRequest("boom")])
    assert [r.text for r in out] == ["A", "B", "A", None]
    assert [r.cached for r in out] == [False, False, True, False]  # the duplicate was asked once
    assert "exploded" in out[3].error and len(lm.requests) == 3 and cached.calls == 3
    again = cached.generate_batch([LMRequest("a"), LMRequest("b"), LMRequest("boom")])
    assert [r.cached for r in again] == [True, True, False]  # errors are not cached: retried next time
    assert len(lm.requests) == 4
    # settings are part of the key
    assert not cached.generate(LMRequest("a", temperature=0.7, seed=1)).cached


# -- OpenAI-compatible HTTP backend --------------------------------------------------------------------------


def test_http_text_call_and_model_discovery():
    with ChatServer(lambda req: f"echo: {_prompt_of(req)}") as server:
        lm = OpenAIChatLM(base_url=server.base_url, api_key="sk-test", backoff=0.01)
        assert lm.name == "fake"  # from GET /models
        assert lm.generate(LMRequest("hello", system="be brief", max_tokens=7, seed=3)) == "echo: hello"
        body = server.requests[0]
        assert body["model"] == "fake" and body["max_tokens"] == 7 and body["seed"] == 3
        assert body["messages"][0] == {"role": "system", "content": "be brief"}
        lm.close()


def test_http_5xx_then_success_and_bounded_retries():
    state = {"n": 0}

    def flaky(req):
        state["n"] += 1
        return (503, {"error": {"message": "busy"}}) if state["n"] <= 2 else "finally"

    with ChatServer(flaky) as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, max_retries=3, backoff=0.01)
        assert lm.generate(LMRequest("x")) == "finally"
        assert len(server.requests) == 3

    with ChatServer(lambda req: (500, {"error": {"message": "down"}})) as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, max_retries=2, backoff=0.01)
        with pytest.raises(LMError, match=r"gave up after 3 attempts.*HTTP 500"):
            lm.generate(LMRequest("x"))
        assert len(server.requests) == 3  # 1 + max_retries, no more

    with ChatServer(lambda req: (400, {"error": {"message": "bad request"}})) as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, max_retries=3, backoff=0.01)
        with pytest.raises(LMError, match="HTTP 400"):
            lm.generate(LMRequest("x"))
        assert len(server.requests) == 1  # a client error is not retried

    with ChatServer(lambda req: {"choices": []}) as server:  # a 200 with a broken body is retried, then fails
        lm = OpenAIChatLM("m", base_url=server.base_url, max_retries=1, backoff=0.01)
        with pytest.raises(LMError, match="malformed response"):
            lm.generate(LMRequest("x"))
        assert len(server.requests) == 2


def test_http_retry_after_is_honoured_and_retried_statuses_are_one_set():
    from roboreward.chat_client import RETRY_STATUSES, is_retried_status

    assert {408, 409, 425, 429} == RETRY_STATUSES and all(is_retried_status(s) for s in (500, 501, 503, 599))
    assert not any(is_retried_status(s) for s in (200, 400, 401, 404, 422))
    state = {"n": 0}

    def limited(req):
        state["n"] += 1
        return (429, {"error": {"message": "slow down"}}, {"Retry-After": "0.05"}) if state["n"] == 1 else "ok"

    with ChatServer(limited) as server:
        # the backoff alone would wait 2.5-5 s before the retry; the server's Retry-After says 0.05 s
        lm = OpenAIChatLM("m", base_url=server.base_url, max_retries=1, backoff=5.0)
        t0 = time.monotonic()
        assert lm.generate(LMRequest("x")) == "ok"
        assert time.monotonic() - t0 < 2.0 and len(server.requests) == 2


def test_http_timeout_is_retried_then_reported():
    with ChatServer(lambda req: "late", delay=1.0) as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, timeout=0.2, max_retries=1, backoff=0.01)
        t0 = time.monotonic()
        with pytest.raises(LMError, match="timed out after 0.2 s"):
            lm.generate(LMRequest("x"))
        assert time.monotonic() - t0 < 1.5  # two short timeouts, not two full server delays
        time.sleep(1.1)  # let the server threads finish their replies before it shuts down
        assert len(server.requests) == 2


def test_http_concurrency_is_real_and_bounded():
    live = InFlight()

    def slow(req):
        with live:
            time.sleep(0.3)
        return _prompt_of(req)

    with ChatServer(slow) as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, concurrency=4, backoff=0.01)
        t0 = time.monotonic()
        out = lm.generate_batch([LMRequest(f"p{i}") for i in range(8)])
        wall = time.monotonic() - t0
    assert [r.text for r in out] == [f"p{i}" for i in range(8)]  # answers stay in request order
    assert live.max == 4  # four in flight at once, never more
    assert wall < 8 * 0.3 * 0.6  # about two rounds of 0.3 s, far below the 2.4 s of a serial loop


def test_http_batch_reports_failures_per_request():
    def handler(req):
        return (500, {"error": {"message": "no"}}) if _prompt_of(req) == "bad" else "ok"

    with ChatServer(handler) as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, concurrency=3, max_retries=1, backoff=0.01)
        out = lm.generate_batch([LMRequest("good"), LMRequest("bad"), LMRequest("good2")])
    assert [r.ok for r in out] == [True, False, True] and "HTTP 500" in out[1].error


def test_http_prefill_continues_the_assistant_turn():
    with ChatServer(lambda req: 'yes"}') as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, continue_final_message=True)
        assert lm.generate(LMRequest("ok?", prefill='{"answer": "')) == '{"answer": "yes"}'
        plain = OpenAIChatLM("m", base_url=server.base_url)  # servers without the extension get no prefill
        assert plain.generate(LMRequest("ok?", prefill='{"answer": "')) == 'yes"}'
    first, second = server.requests
    assert first["messages"][-1] == {"role": "assistant", "content": '{"answer": "'}
    assert first["continue_final_message"] is True and first["add_generation_prompt"] is False
    assert second["messages"][-1]["role"] == "user" and "continue_final_message" not in second


def test_http_video_as_frames_and_as_video_url(sample_mp4):
    video = read_video(sample_mp4, num_frames=4)
    with ChatServer(lambda req: "seen") as server:
        frames_lm = OpenAIChatLM("m", base_url=server.base_url, image_max_side=48)
        assert frames_lm.generate(LMRequest("what happens?", video=video)) == "seen"
        url_lm = OpenAIChatLM("m", base_url=server.base_url, video_mode="video_url")
        assert url_lm.generate(LMRequest("what happens?", video=video)) == "seen"
    parts = server.requests[0]["messages"][-1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 4 and parts[-1] == {"type": "text", "text": "what happens?"}
    from PIL import Image

    first = Image.open(__import__("io").BytesIO(base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1])))
    assert first.format == "JPEG" and max(first.size) == 48
    assert "4 frames sampled uniformly over 1.2 s" in parts[0]["text"]
    (vpart, tpart) = server.requests[1]["messages"][-1]["content"]
    assert vpart["type"] == "video_url" and vpart["video_url"]["url"].startswith("data:video/mp4;base64,")
    decoded = read_video(base64.b64decode(vpart["video_url"]["url"].split(",", 1)[1]), num_frames=4)
    assert len(decoded.frames) == 4 and decoded.total_frames == 4
    assert np.abs(decoded.frames.astype(int) - video.frames[:, : decoded.frames.shape[1]].astype(int)).mean() < 12


def test_http_text_only_model_refuses_video(sample_mp4):
    with ChatServer(lambda req: "x") as server:
        lm = OpenAIChatLM("m", base_url=server.base_url, supports_video=False)
        with pytest.raises(LMError, match="text model"):
            lm.generate(LMRequest("p", video=read_video(sample_mp4, num_frames=2)))


def test_http_unreachable_server_fails_cleanly():
    lm = OpenAIChatLM("m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff=0.01, timeout=2)
    with pytest.raises(LMError, match="gave up after 2 attempts"):
        lm.generate(LMRequest("x"))
    with pytest.raises(LMError, match="/models failed"):
        _ = OpenAIChatLM(base_url="http://127.0.0.1:9/v1").name


# -- local transformers backend --------------------------------------------------------------------------------


def test_transformers_text_backend_on_tiny_qwen3(tiny_qwen3):
    lm = TransformersLM(tiny_qwen3)
    assert not lm.supports_video and lm._model is None  # nothing loaded until the first call
    out = lm.generate_batch([LMRequest("Say hi.", max_tokens=5), LMRequest("A longer prompt here.", max_tokens=5)])
    assert all(r.ok and isinstance(r.text, str) for r in out)
    assert lm.generate(LMRequest("JSON please.", max_tokens=3, prefill='{"a": "')).startswith('{"a": "')
    # greedy decoding is deterministic, batched or alone (left padding)
    assert lm.generate(LMRequest("Say hi.", max_tokens=5)) == out[0].text
    with pytest.raises(LMError, match="cannot take a video"):
        lm.generate(LMRequest("x", video=read_video(make_frames(4), num_frames=2)))


def test_transformers_video_backend_on_tiny_qwen3_vl(tiny_qwen3_vl, sample_mp4):
    lm = TransformersLM(tiny_qwen3_vl)
    assert lm.supports_video
    video = read_video(sample_mp4, num_frames=4)
    out = lm.generate_batch(
        [
            LMRequest("Describe the video.", video=video, max_tokens=4),
            LMRequest("Text only.", max_tokens=4),
            LMRequest("Describe it again.", video=video, max_tokens=4),
        ]
    )
    assert all(r.ok for r in out), [r.error for r in out]


def test_transformers_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(LMError, match="cannot load the config"):
        TransformersLM(tmp_path / "no-such-model")
