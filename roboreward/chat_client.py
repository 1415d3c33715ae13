"""The one OpenAI-compatible chat-completions client, used by relabeling (``OpenAIChatLM``) and API scoring
(``ApiScorer``): retries with backoff and ``Retry-After``, timeouts, a bounded connection pool, and the
data-URI encoding of videos (JPEG frames or one mp4).

Why a hand-written httpx client and not the ``openai`` package: ``openai`` (3.x) has ``max_retries``,
``timeout``, ``Retry-After`` and ``extra_body``, but (1) its backoff starts at 0.5 s and is capped at 8 s by
class constants, not options, so a caller cannot set it (our tests and fast local vLLM servers retry after
10 ms; long builds want a 30 s cap); (2) it never retries a 200 whose body is not a chat completion (a
restarting proxy sends those, and the relabeling tests require that retry); (3) its set of retried statuses
is fixed (no 425); (4) it would add a dependency tree (pydantic models, jiter, distro) for what is ~100 lines
over httpx, which is already a dependency. vLLM's extensions (``continue_final_message``,
``add_generation_prompt``, ``mm_processor_kwargs``) are plain body fields here.

Video modes (one naming for both users): ``"frames"`` sends one ``image_url`` JPEG data URI per sampled
frame, in time order (every multimodal chat server takes it); ``"video_url"`` sends the sampled frames
re-encoded as one H.264 mp4 ``video_url`` data URI (vLLM's video input for Qwen-VL).
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from roboreward.video import SampledVideo

T = TypeVar("T")
R = TypeVar("R")

#: How a video goes into a chat message (see the module docstring).
VideoMode = Literal["frames", "video_url"]
VIDEO_MODES: tuple[str, ...] = ("frames", "video_url")

#: HTTP statuses retried besides every 5xx (request timeout, conflict, too early, rate limited).
RETRY_STATUSES = frozenset({408, 409, 425, 429})


class ChatError(RuntimeError):
    """A chat call that could not be completed (server down, timeouts after every retry, 4xx, bad body)."""


class MalformedResponse(ValueError):
    """A 200 answer that is not what was asked for; raised by a ``parse`` callback, it is retried."""


def is_retried_status(status: int) -> bool:
    """Whether an HTTP status is worth another attempt (:data:`RETRY_STATUSES` and every 5xx)."""
    return status in RETRY_STATUSES or 500 <= status < 600


def check_video_mode(mode: str) -> VideoMode:
    """``mode`` if it is one of :data:`VIDEO_MODES`, else a ValueError naming them."""
    if mode not in VIDEO_MODES:
        raise ValueError(f"video_mode must be one of {list(VIDEO_MODES)}, got {mode!r}")
    return mode  # type: ignore[return-value]


def jpeg_data_uri(frame: np.ndarray, *, max_side: int | None = None, quality: int = 85) -> str:
    """One frame as a ``data:image/jpeg;base64,...`` URI (downscaled so the long side <= ``max_side``)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(frame))
    if max_side is not None and max(img.size) > max_side:
        img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def mp4_data_uri(video: SampledVideo) -> str:
    """The sampled frames re-encoded as one H.264 mp4 ``data:video/mp4;base64,...`` URI (at the sampled fps)."""
    from roboreward.video import write_video

    with tempfile.TemporaryDirectory() as d:
        path = write_video(Path(d) / "clip.mp4", video.frames, fps=max(video.sampled_fps, 1.0))
        data = path.read_bytes()
    return "data:video/mp4;base64," + base64.b64encode(data).decode("ascii")


def video_parts(
    video: SampledVideo,
    mode: VideoMode,
    *,
    max_side: int | None = None,
    quality: int = 85,
    caption: bool = False,
) -> list[dict[str, Any]]:
    """The content parts carrying ``video`` in ``mode``; ``caption`` puts a line saying how the frames were
    sampled before them (frames mode only)."""
    if mode == "video_url":
        return [{"type": "video_url", "video_url": {"url": mp4_data_uri(video)}}]
    parts: list[dict[str, Any]] = []
    if caption:
        duration = video.total_frames / video.source_fps if video.source_fps > 0 else 0.0
        parts.append(
            {
                "type": "text",
                "text": f"Video: {len(video.frames)} frames sampled uniformly over {duration:.1f} s, in time "
                "order; the last frame shows the final state.",
            }
        )
    for frame in video.frames:
        parts.append(
            {"type": "image_url", "image_url": {"url": jpeg_data_uri(frame, max_side=max_side, quality=quality)}}
        )
    return parts


def message_text(response: dict[str, Any]) -> str:
    """The assistant text of a chat-completion body (``""`` for a null content); MalformedResponse otherwise."""
    try:
        content = response["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise MalformedResponse(f"not a chat completion: {str(response)[:200]}") from None
    return "" if content is None else str(content)


class ChatClient:
    """A pooled HTTP client for one OpenAI-compatible server (``base_url`` ends in ``/v1``).

    Every call gets ``timeout`` seconds. Timeouts, connection errors, :func:`is_retried_status` answers and
    malformed bodies are retried up to ``max_retries`` times, waiting ``backoff * 2**attempt`` s (jittered,
    capped at ``max_backoff``) or the server's ``Retry-After``; other 4xx fail at once. At most
    ``concurrency`` connections are open; :meth:`map` runs that many calls at a time. The API key is
    ``api_key`` or ``$OPENAI_API_KEY``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        concurrency: int = 4,
    ) -> None:
        if not base_url:
            raise ValueError("an OpenAI-compatible server needs a base_url, e.g. http://localhost:8000/v1")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = max(1, int(concurrency))
        self._client: Any = None
        self._lock = threading.Lock()

    def _http(self) -> Any:
        import httpx

        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(
                    base_url=self.base_url,
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                )
            return self._client

    def close(self) -> None:
        """Close the connection pool (a later call opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def served_model(self) -> str:
        """The first model id of ``GET /models`` (vLLM serves one); ChatError when the server cannot say."""
        try:
            resp = self._http().get("/models")
            resp.raise_for_status()
            return str(resp.json()["data"][0]["id"])
        except Exception as exc:
            raise ChatError(
                f"{self.base_url}: no model given and /models failed ({type(exc).__name__}: {exc})"
            ) from None

    def _sleep_before_retry(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.max_backoff, self.backoff * (2**attempt)) * (0.5 + random.random() / 2)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = min(self.max_backoff, max(0.0, float(retry_after)))
        time.sleep(delay)

    def complete(self, body: dict[str, Any], parse: Callable[[dict[str, Any]], T], *, label: str = "") -> T:
        """POST ``body`` to ``/chat/completions`` and return ``parse(response_json)``, retrying as the class
        says; a :class:`MalformedResponse` from ``parse`` is retried too. ``label`` names the model in errors."""
        import httpx

        where = f"{self.base_url} ({label})" if label else self.base_url
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                resp = self._http().post("/chat/completions", json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    try:
                        return parse(resp.json())
                    except (ValueError, MalformedResponse) as exc:  # a non-JSON body is a ValueError too
                        last = f"malformed response body ({exc}): {resp.text[:200]!r}"
                else:
                    last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                    if not is_retried_status(resp.status_code):
                        raise ChatError(f"{where}: {last}")
                    retry_after = resp.headers.get("Retry-After")
            if attempt < self.max_retries:
                self._sleep_before_retry(attempt, retry_after)
        raise ChatError(f"{where}: gave up after {self.max_retries + 1} attempts; last: {last}")

    def map(self, fn: Callable[[R], T], items: Iterable[R]) -> list[T]:
        """``[fn(x) for x in items]`` with up to ``concurrency`` calls in flight (order kept)."""
        items = list(items)
        if self.concurrency <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))


def chat_body(model: str, messages: Sequence[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A chat-completions request body; ``None`` fields are left out."""
    return {"model": model, "messages": list(messages), **{k: v for k, v in fields.items() if v is not None}}
