"""The relabeling stages' backend for OpenAI-compatible chat servers (vLLM, which scales a build over many
GPUs/nodes, or a hosted API), on the one :class:`~roboreward.chat_client.ChatClient`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from roboreward.chat_client import (
    ChatClient,
    ChatError,
    VideoMode,
    chat_body,
    check_video_mode,
    message_text,
    video_parts,
)
from roboreward.relabel.lm import LM, LMError, LMRequest, LMResult


class OpenAIChatLM(LM):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``model`` None asks the server's ``/models`` for its first model (vLLM serves one). ``client_options``
    (``api_key``, ``timeout`` default 120 s, ``max_retries`` 3, ``backoff`` 1 s, ``max_backoff`` 30 s,
    ``concurrency`` 4) go to the :class:`~roboreward.chat_client.ChatClient` that does the timeouts, retries
    (``Retry-After`` honoured) and pooling; :meth:`generate_batch` runs up to ``concurrency`` requests at a time.
    Video goes as ``video_mode`` (``"frames"``: a caption line and one JPEG per frame, the long side at most
    ``image_max_side``; ``"video_url"``: one mp4). ``continue_final_message=True`` sends a request's
    ``prefill`` as the start of the assistant turn (vLLM's ``continue_final_message`` extension); otherwise
    prefills are not sent. ``extra_body`` fields are added to every request.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str,
        video_mode: VideoMode = "frames",
        image_max_side: int = 512,
        jpeg_quality: int = 85,
        supports_video: bool = True,
        continue_final_message: bool = False,
        extra_body: dict[str, Any] | None = None,
        **client_options: Any,
    ) -> None:
        self.video_mode = check_video_mode(video_mode)
        self.client = ChatClient(base_url, **client_options)
        self.base_url = self.client.base_url
        self.concurrency = self.client.concurrency  # read by CachedLM to store answers as they arrive
        self.image_max_side = image_max_side
        self.jpeg_quality = jpeg_quality
        self.supports_video = supports_video
        self.continue_final_message = continue_final_message
        self.extra_body = dict(extra_body or {})
        self._model = model
        self._model_lock = threading.Lock()

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.model

    @property
    def model(self) -> str:
        """The served model id (asked from ``/models`` once when not given)."""
        with self._model_lock:
            if self._model is None:
                try:
                    self._model = self.client.served_model()
                except ChatError as exc:
                    raise LMError(str(exc)) from None
            return self._model

    def messages(self, request: LMRequest) -> list[dict[str, Any]]:
        """The chat messages sent for ``request`` (the video before the prompt text)."""
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        if request.video is None:
            messages.append({"role": "user", "content": request.prompt})
            return messages
        if not self.supports_video:
            raise LMError(f"{self.name} is configured as a text model and cannot take a video")
        content = video_parts(
            request.video, self.video_mode, max_side=self.image_max_side, quality=self.jpeg_quality, caption=True
        )
        content.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": content})
        return messages

    def request_body(self, request: LMRequest) -> dict[str, Any]:
        """The chat-completions body for ``request`` (the prefill as a final assistant message when enabled)."""
        body = chat_body(
            self.model,
            self.messages(request),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=request.seed,
        )
        body.update(self.extra_body)
        if self.continue_final_message and request.prefill:
            body["messages"].append({"role": "assistant", "content": request.prefill})
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    def generate(self, request: LMRequest) -> str:
        prefill = request.prefill if self.continue_final_message else ""
        body = self.request_body(request)
        try:
            return prefill + self.client.complete(body, message_text, label=self.name)
        except ChatError as exc:
            raise LMError(str(exc)) from None

    def generate_batch(self, requests: Sequence[LMRequest]) -> list[LMResult]:
        if len(requests) > 1 and self.client.concurrency > 1:
            self.model  # noqa: B018 - resolve the model id once, before the threads start
        return self.client.map(lambda r: LM.generate_batch(self, [r])[0], requests)

    def close(self) -> None:
        self.client.close()
