"""A real local HTTP server speaking the OpenAI chat-completions protocol, for tests (127.0.0.1 only).

``handler(request_json) -> reply`` decides each answer; a reply is a str (the assistant's text), a dict
(a full response body, sent as is), or ``(status, body)`` / ``(status, body, headers)`` for errors. ``delay``
seconds before replying lets tests exercise timeouts. Every request body is recorded in ``server.requests``.
``strict=True`` refuses, with vLLM's 400, a body that vLLM's ``ChatCompletionRequest`` refuses
(:func:`vllm_request_error`).

    with ChatServer(lambda req: "ANSWER: 4") as server:
        client = OpenAI(base_url=server.base_url, ...)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | dict | tuple[int, Any] | tuple[int, Any, dict[str, str]]

#: vLLM's default ``--max-logprobs``: a request asking for more top_logprobs is refused.
VLLM_MAX_LOGPROBS = 20


def vllm_request_error(req: dict) -> str | None:
    """Why vLLM's OpenAI server (``vllm/entrypoints/openai/protocol.py``, ChatCompletionRequest's validators)
    would refuse this chat request, or None. ``add_generation_prompt`` defaults to true there."""
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: field required (a non-empty list)"
    if req.get("continue_final_message") and req.get("add_generation_prompt", True):
        return "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
    if req.get("continue_final_message") and messages[-1].get("role") != "assistant":
        return "continue_final_message needs a final assistant message to continue"
    top = req.get("top_logprobs")
    if top is not None:
        if top < 0:
            return "`top_logprobs` must be a positive value."
        if top > 0 and not req.get("logprobs"):
            return "when using `top_logprobs`, `logprobs` must be set to true."
        if top > VLLM_MAX_LOGPROBS:
            return f"Requested sample logprobs of {top}, which is greater than max allowed: {VLLM_MAX_LOGPROBS}"
    if req.get("max_tokens") is not None and req["max_tokens"] < 1:
        return "max_tokens must be at least 1"
    if "mm_processor_kwargs" in req and not isinstance(req["mm_processor_kwargs"], dict | None):
        return "mm_processor_kwargs must be an object"
    return None


def chat_response(text: str, model: str = "fake", top_logprobs: list[dict[str, float]] | None = None) -> dict:
    """A chat.completion body; ``top_logprobs`` is one {token: logprob} dict per generated token."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if top_logprobs is not None:
        content = []
        for alternatives in top_logprobs:
            best = max(alternatives, key=alternatives.get)
            content.append(
                {
                    "token": best,
                    "logprob": alternatives[best],
                    "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alternatives.items()],
                }
            )
        choice["logprobs"] = {"content": content}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class ChatServer:
    """Context manager running the server in a thread; ``base_url`` ends with ``/v1``."""

    def __init__(self, handler: Callable[[dict], Reply], *, delay: float = 0.0, strict: bool = False) -> None:
        self.handler = handler
        self.delay = delay
        self.strict = strict
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the client went away mid-request (e.g. killed): nothing to answer
                    self.close_connection = True
                    return
                try:
                    req = json.loads(body or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "invalid JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with outer._lock:
                    outer.requests.append(req)
                refused = vllm_request_error(req) if outer.strict else None
                if refused is not None:
                    error = {"message": refused, "type": "BadRequestError", "param": None, "code": 400}
                    self._send(400, {"error": error})  # vLLM's ErrorResponse
                    return
                if outer.delay:
                    time.sleep(outer.delay)
                try:
                    reply = outer.handler(req)
                except Exception as exc:  # a handler bug becomes a 500, like a broken server
                    self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                    return
                if isinstance(reply, tuple):
                    self._send(*reply)
                elif isinstance(reply, dict):
                    self._send(200, reply)
                else:
                    self._send(200, chat_response(str(reply), model=req.get("model", "fake")))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


class InFlight:
    """Counts requests a handler is serving at once (``max`` after the run): ``with gauge: ...`` around the work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.max = 0

    def __enter__(self) -> InFlight:
        with self._lock:
            self.now += 1
            self.max = max(self.max, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1
