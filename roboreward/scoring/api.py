"""OpenAI-compatible API scorer: any ``/chat/completions`` server (vLLM, proprietary APIs).

It parses the ``ANSWER: <n>`` text (HELM style) and, when the server returns ``top_logprobs`` (vLLM does),
reads the same distribution over 1..5 as the local scorer from the score token after ``ANSWER:``.
"""

from __future__ import annotations

import base64
import io
import math
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.rubric import SCORES, parse_answer, reward_prompt
from roboreward.sampling import DEFAULT_FPS, DEFAULT_MAX_FRAMES, DEFAULT_MIN_FRAMES
from roboreward.scoring.common import output_from_probs, sample_video
from roboreward.types import RewardOutput, VideoInput
from roboreward.video import SampledVideo


class ApiError(RuntimeError):
    """The API server failed (after retries) or answered something that is not a chat completion."""


_ANSWER_TAIL_RE = re.compile(r"answer\s*[:=]?\s*\**\s*\[?\s*$", re.IGNORECASE)


def probs_from_top_logprobs(content: Sequence[dict[str, Any]]) -> list[float] | None:
    """The distribution over 1..5 at the score token of a chat completion's ``logprobs.content``.

    The score position is the first token right after ``ANSWER:`` (case-insensitive) that is, or has among its
    alternatives, a digit 1-5; without ``ANSWER:``, the first generated token if it is a digit (a bare "4"). The
    probability of each score sums its alternatives in ``top_logprobs`` ("4" and " 4" both count),
    renormalised over 1..5. ``None`` when no score token or none of 1..5 is among the alternatives.
    """
    digits = {str(s) for s in SCORES}
    prefix = ""
    position = None
    for i, tok in enumerate(content):
        text = tok.get("token") or ""
        if _ANSWER_TAIL_RE.search(prefix):
            # the answer position: the generated token or one of its alternatives is a score digit
            candidates = [text] + [a.get("token") or "" for a in tok.get("top_logprobs") or []]
            if any(c.strip() in digits for c in candidates):
                position = i
                break
        prefix += text
    if position is None:
        if content and (content[0].get("token") or "").strip() in digits:
            position = 0  # a bare "4" answer
        else:
            return None
    alternatives = content[position].get("top_logprobs") or [
        {"token": content[position].get("token"), "logprob": content[position].get("logprob", 0.0)}
    ]
    mass = np.zeros(len(SCORES))
    for alt in alternatives:
        t = (alt.get("token") or "").strip()
        lp = alt.get("logprob")
        if t in digits and lp is not None and math.isfinite(lp):
            mass[int(t) - 1] += math.exp(lp)
    if mass.sum() <= 0:
        return None
    return [float(x) for x in mass / mass.sum()]


def _jpeg_data_uri(frame: np.ndarray, quality: int = 90) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _mp4_data_uri(sampled: SampledVideo) -> str:
    import tempfile

    from roboreward.video import write_video

    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "clip.mp4", sampled.frames, fps=max(sampled.sampled_fps, 1.0))
        data = path.read_bytes()
    return "data:video/mp4;base64," + base64.b64encode(data).decode()


@dataclass
class ApiScorer:
    """Score with a VLM behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Frames go as JPEG ``image_url`` data URIs (``video_mode="images"``, works with every VLM API) or as one
    mp4 ``video_url`` data URI (``video_mode="video"``, vLLM's video input for Qwen-VL models). Greedy
    decoding (``temperature=0``); ``logprobs=True, top_logprobs=k`` is requested so servers that support it
    (vLLM) give the distribution over 1..5; text-only answers are parsed HELM style and an unparseable
    answer returns ``RewardOutput(score=1, parsed=False)`` (the metric counts it at the maximum error).
    Requests time out after ``timeout`` s and are retried ``max_retries`` times with exponential backoff on
    connection errors, 408/409/429 and 5xx; other HTTP errors raise :class:`ApiError` at once.
    """

    model: str
    base_url: str = "http://localhost:8000/v1"
    api_key: str | None = None
    fps: float | None = DEFAULT_FPS
    max_frames: int = DEFAULT_MAX_FRAMES
    min_frames: int = DEFAULT_MIN_FRAMES
    num_frames: int | None = None
    video_mode: str = "images"
    logprobs: bool = True
    top_logprobs: int = 20
    max_tokens: int = 16
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 1.0
    concurrency: int = 4
    template: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    _client: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.video_mode not in ("images", "video"):
            raise ValueError(f"video_mode must be 'images' or 'video', got {self.video_mode!r}")
        self.base_url = self.base_url.rstrip("/")
        self.name = self.name or self.model
        if self.api_key is None:
            self.api_key = os.environ.get("OPENAI_API_KEY")

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "scorer": "ApiScorer",
            "model": self.model,
            "base_url": self.base_url,
            "video_mode": self.video_mode,
            "fps": self.fps if self.num_frames is None else None,
            "max_frames": self.max_frames,
            "min_frames": self.min_frames,
            "num_frames": self.num_frames,
            "custom_template": self.template is not None,
        }

    def _http(self) -> Any:
        import httpx

        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(timeout=self.timeout, headers=headers)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def request_body(self, video: VideoInput, instruction: str) -> dict[str, Any]:
        """The chat-completions request for one pair (frames first, then the rubric prompt)."""
        sampled = sample_video(
            video, fps=self.fps, max_frames=self.max_frames, min_frames=self.min_frames, num_frames=self.num_frames
        )
        if self.video_mode == "video":
            media = [{"type": "video_url", "video_url": {"url": _mp4_data_uri(sampled)}}]
        else:
            media = [{"type": "image_url", "image_url": {"url": _jpeg_data_uri(f)}} for f in sampled.frames]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [*media, {"type": "text", "text": reward_prompt(instruction, self.template)}],
                }
            ],
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        body.update(self.extra_body)
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = f"{self.base_url}/chat/completions"
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._http().post(url, json=body)
            except httpx.TransportError as exc:  # connection refused, timeouts, ...
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        raise ApiError(f"{url}: response is not JSON: {resp.text[:200]!r}") from None
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in (408, 409, 429) and resp.status_code < 500:
                    raise ApiError(f"{url}: {last}")
            if attempt < self.max_retries:
                time.sleep(min(self.backoff * 2**attempt, 30.0) * (0.5 + random.random() / 2))
        raise ApiError(f"{url}: gave up after {self.max_retries + 1} attempts ({last})")

    def parse_response(self, response: dict[str, Any]) -> RewardOutput:
        """A RewardOutput from a chat-completion body (distribution from logprobs when present)."""
        try:
            choice = response["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ApiError(f"not a chat completion: {str(response)[:300]}") from None
        content = (choice.get("logprobs") or {}).get("content") or []
        probs = probs_from_top_logprobs(content) if content else None
        parsed = parse_answer(text)
        if probs is not None:
            return output_from_probs(probs, raw_text=text)
        if parsed is None:
            return RewardOutput(score=1, raw_text=text, parsed=False)
        return RewardOutput(score=parsed, expected=float(parsed), raw_text=text)

    def score(self, video: VideoInput, instruction: str) -> RewardOutput:
        return self.parse_response(self._post(self.request_body(video, instruction)))

    def score_batch(self, videos: Sequence[VideoInput], instructions: Sequence[str]) -> list[RewardOutput]:
        """Score pairs with ``concurrency`` requests in flight (order preserved)."""
        if len(videos) != len(instructions):
            raise ValueError(f"{len(videos)} videos but {len(instructions)} instructions")
        if self.concurrency <= 1 or len(videos) <= 1:
            return [self.score(v, t) for v, t in zip(videos, instructions, strict=True)]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self.score, videos, instructions))
