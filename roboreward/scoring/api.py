"""OpenAI-compatible API scorer: any ``/chat/completions`` server (vLLM, proprietary APIs), on the one
:class:`~roboreward.chat_client.ChatClient`.

Two ways to ask, one spec syntax ``<scheme>:<model>@<base_url>`` (:func:`api_scorer_from_spec`):

* ``openai:`` — a plain chat request; the ``ANSWER: <n>`` text is parsed (HELM style) and, when the server
  returns ``top_logprobs`` (vLLM does), the distribution over 1..5 is read at the score token after ``ANSWER:``;
* ``vllm:`` — the scale-out path for a reward checkpoint served by ``vllm serve``: the assistant turn is primed
  with ``ANSWER: `` (vLLM's ``continue_final_message=True`` / ``add_generation_prompt=False``), one token is
  generated with ``logprobs`` / ``top_logprobs``, and p(1..5) is read at that token — the same prompt and the
  same distribution as the local :class:`~roboreward.scoring.local.RewardModel`, without generation. The
  video goes as one mp4 (``video_url``), as the checkpoints were trained on video input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roboreward.chat_client import ChatClient, ChatError, chat_body, check_video_mode, video_parts
from roboreward.rubric import ANSWER_PREFIX, SCORES, parse_answer, reward_prompt
from roboreward.sampling import DEFAULT_FPS, DEFAULT_MAX_FRAMES, DEFAULT_MIN_FRAMES, FrameSampling
from roboreward.scoring.common import output_from_probs, sample_video
from roboreward.types import RewardOutput, VideoInput


class ApiError(RuntimeError):
    """The API server failed (after retries) or answered something that is not a chat completion."""


_ANSWER_TAIL_RE = re.compile(r"answer\s*[:=]?\s*\**\s*\[?\s*$", re.IGNORECASE)


def probs_at(token: dict[str, Any]) -> list[float] | None:
    """The distribution over 1..5 at one generated token of ``logprobs.content``: the mass of each digit among
    its ``top_logprobs`` ("4" and " 4" both count), renormalised over 1..5; ``None`` when no digit is there."""
    digits = {str(s) for s in SCORES}
    alternatives = token.get("top_logprobs") or [{"token": token.get("token"), "logprob": token.get("logprob", 0.0)}]
    mass = np.zeros(len(SCORES))
    for alt in alternatives:
        t = (alt.get("token") or "").strip()
        lp = alt.get("logprob")
        if t in digits and lp is not None and math.isfinite(lp):
            mass[int(t) - 1] += math.exp(lp)
    if mass.sum() <= 0:
        return None
    return [float(x) for x in mass / mass.sum()]


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
    return probs_at(content[position])


@dataclass
class ApiScorer:
    """Score with a VLM behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Frames go as JPEG ``image_url`` data URIs (``video_mode="frames"``, works with every VLM API) or as one
    mp4 ``video_url`` data URI (``video_mode="video_url"``, vLLM's video input for Qwen-VL models); they are
    sampled by ``sampling`` (or the ``fps`` / ``max_frames`` / ``min_frames`` / ``num_frames`` fields).
    Greedy decoding (``temperature=0``); ``logprobs=True, top_logprobs=k`` is requested so servers that
    support it (vLLM) give the distribution over 1..5; text-only answers are parsed HELM style and an
    unparseable answer returns ``RewardOutput(score=1, parsed=False)`` (the metric counts it at the maximum
    error). ``primed=True`` (the ``vllm:`` spec) asks a vLLM server the local scorer's way instead: the
    assistant turn starts with ``ANSWER: `` and is continued for one token (``continue_final_message``), and
    p(1..5) is read at that token. ``mm_processor_kwargs`` go to vLLM's HF processor. Timeouts, retries and
    backoff are :class:`~roboreward.chat_client.ChatClient`'s; a failed call or a body that is not a chat
    completion raises :class:`ApiError`.
    """

    model: str
    base_url: str = "http://localhost:8000/v1"
    api_key: str | None = None
    fps: float | None = DEFAULT_FPS
    max_frames: int = DEFAULT_MAX_FRAMES
    min_frames: int = DEFAULT_MIN_FRAMES
    num_frames: int | None = None
    video_mode: str = "frames"
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
    sampling: FrameSampling | None = None
    primed: bool = False
    mm_processor_kwargs: dict[str, Any] | None = None
    _chat: ChatClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_video_mode(self.video_mode)
        if self.primed and not (self.logprobs and self.top_logprobs >= len(SCORES)):
            raise ValueError(
                f"a primed API scorer reads p(1..5) from top_logprobs: needs logprobs=True and top_logprobs >= "
                f"{len(SCORES)}, got logprobs={self.logprobs}, top_logprobs={self.top_logprobs}"
            )
        if self.sampling is not None:
            self.fps, self.num_frames = self.sampling.fps, self.sampling.num_frames
            self.max_frames, self.min_frames = self.sampling.max_frames, self.sampling.min_frames
        self.sampling = FrameSampling(self.fps, self.num_frames, self.max_frames, self.min_frames)
        self.fps = self.sampling.fps
        self.base_url = self.base_url.rstrip("/")
        self.name = self.name or self.model
        self._chat = ChatClient(
            self.base_url,
            api_key=self.api_key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
            concurrency=self.concurrency,
        )
        self.api_key = self._chat.api_key

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "scorer": "ApiScorer",
            "model": self.model,
            "base_url": self.base_url,
            "video_mode": self.video_mode,
            **self.sampling.as_dict(),  # type: ignore[union-attr]
            "custom_template": self.template is not None,
            **({"primed": True} if self.primed else {}),
        }

    def close(self) -> None:
        self._chat.close()

    def request_body(self, video: VideoInput, instruction: str) -> dict[str, Any]:
        """The chat-completions request for one pair (frames first, then the rubric prompt; when primed, the
        assistant turn ``ANSWER: `` to continue for one token)."""
        sampled = sample_video(video, self.sampling)
        content = [
            *video_parts(sampled, self.video_mode, quality=90),  # type: ignore[arg-type]
            {"type": "text", "text": reward_prompt(instruction, self.template)},
        ]
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        fields: dict[str, Any] = {"temperature": 0.0, "max_tokens": self.max_tokens}
        if self.logprobs:
            fields.update(logprobs=True, top_logprobs=self.top_logprobs)
        if self.primed:
            messages.append({"role": "assistant", "content": ANSWER_PREFIX})
            fields.update(max_tokens=1, continue_final_message=True, add_generation_prompt=False)
        body = chat_body(self.model, messages, mm_processor_kwargs=self.mm_processor_kwargs, **fields)
        body.update(self.extra_body)
        return body

    def parse_response(self, response: dict[str, Any]) -> RewardOutput:
        """A RewardOutput from a chat-completion body (distribution from logprobs when present)."""
        try:
            choice = response["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ApiError(f"not a chat completion: {str(response)[:300]}") from None
        content = (choice.get("logprobs") or {}).get("content") or []
        if self.primed:  # the first generated token is the score token; the reply lacks the primed prefix
            text = ANSWER_PREFIX + text
            probs = probs_at(content[0]) if content else None
        else:
            probs = probs_from_top_logprobs(content) if content else None
        parsed = parse_answer(text)
        if probs is not None:
            return output_from_probs(probs, raw_text=text)
        if parsed is None:
            return RewardOutput(score=1, raw_text=text, parsed=False)
        return RewardOutput(score=parsed, expected=float(parsed), raw_text=text)

    def score(self, video: VideoInput, instruction: str) -> RewardOutput:
        body = self.request_body(video, instruction)
        try:
            return self._chat.complete(body, self.parse_response, label=self.model)
        except ChatError as exc:
            raise ApiError(str(exc)) from None

    def score_batch(self, videos: Sequence[VideoInput], instructions: Sequence[str]) -> list[RewardOutput]:
        """Score pairs with ``concurrency`` requests in flight (order preserved)."""
        if len(videos) != len(instructions):
            raise ValueError(f"{len(videos)} videos but {len(instructions)} instructions")
        return self._chat.map(lambda pair: self.score(*pair), list(zip(videos, instructions, strict=True)))


#: Spec schemes of API scorers (``<scheme>:<model>@<base_url>``) and the ApiScorer options each one sets.
API_SCHEMES: dict[str, dict[str, Any]] = {"openai": {}, "vllm": {"primed": True, "video_mode": "video_url"}}


def api_scorer_from_spec(spec: str, **kwargs: Any) -> ApiScorer | None:
    """The :class:`ApiScorer` of an ``openai:<model>@<base_url>`` / ``vllm:<model>@<base_url>`` spec (``None``
    for any other spec; the base URL may be left out, ``@`` and all, for the default). ``kwargs`` win over the
    scheme's options. ValueError names a malformed spec."""
    scheme, colon, rest = str(spec).strip().partition(":")
    if not colon or scheme not in API_SCHEMES:
        return None
    model, at, base_url = rest.partition("@")
    if not model or (at and not base_url):
        raise ValueError(f"API scorer spec must be '{scheme}:<model>@<base_url>', got {spec!r}")
    options = {**API_SCHEMES[scheme], **kwargs}
    if base_url:
        options["base_url"] = base_url
    return ApiScorer(model=model, **options)


__all__ = ["API_SCHEMES", "ApiError", "ApiScorer", "api_scorer_from_spec", "probs_at", "probs_from_top_logprobs"]
