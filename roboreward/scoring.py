"""Reward scoring: local Qwen-VL reward models, OpenAI-compatible API models, and dense progress curves.

Every scorer follows :class:`roboreward.types.Scorer` (``score`` / ``score_batch``) and returns
:class:`~roboreward.types.RewardOutput`:

* :class:`RewardModel` — a transformers Qwen3-VL / Qwen2.5-VL checkpoint (default ``teetone/RoboReward-4B``).
  Frames are sampled uniformly (``fps`` / ``max_frames``), the released cards' prompt is primed with
  ``ANSWER: `` and the distribution over 1..5 is read from the logits of the tokens "1".."5" at the answer
  position. No generation, no sampling.
* :class:`ApiScorer` — any OpenAI-compatible chat-completions server (vLLM, proprietary APIs). It parses the
  ``ANSWER: <n>`` text (HELM style) and, when the server returns ``top_logprobs`` (vLLM does), reads the same
  distribution over 1..5 as the local scorer from the score token after ``ANSWER:``.
* :func:`load_scorer` builds either from a spec string; :func:`progress_curve` scores growing prefixes of a
  video with any scorer.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from roboreward.rubric import SCORE_NAMES, SCORES, parse_answer, reward_prompt
from roboreward.types import RewardOutput, Scorer, VideoInput
from roboreward.video import SampledVideo, VideoDecodeError, probe, read_video, sample_indices

DEFAULT_MODEL = "teetone/RoboReward-4B"
#: Frame sampling defaults: 2 frames per second of video, 4 to 8 frames (what the released models were trained
#: with; no official inference setting is published). Recorded in every results file via ``Scorer.settings``.
DEFAULT_FPS = 2.0
DEFAULT_MAX_FRAMES = 8
DEFAULT_MIN_FRAMES = 4
#: Frame rate assumed for in-memory frame arrays that do not carry one (the released videos are 10 fps).
DEFAULT_FRAMES_FPS = 10.0


class Frames(np.ndarray):
    """A (T, H, W, 3) uint8 frame array that remembers its frame rate (``.fps``); slices keep it.

    Scorers treat it like any frame array; those that sample by time (``RewardModel``, ``ApiScorer``) use
    ``fps`` instead of assuming :data:`DEFAULT_FRAMES_FPS`. :func:`progress_curve` passes prefixes this way.
    """

    fps: float

    def __new__(cls, frames: np.ndarray, fps: float = DEFAULT_FRAMES_FPS) -> Frames:
        obj = np.asarray(frames).view(cls)
        obj.fps = float(fps)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.fps = getattr(obj, "fps", DEFAULT_FRAMES_FPS)


def _is_frames(video: Any) -> bool:
    return isinstance(video, np.ndarray) or (
        isinstance(video, Sequence) and not isinstance(video, str | bytes | bytearray)
    )


def sample_video(
    video: VideoInput,
    *,
    fps: float | None = DEFAULT_FPS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    min_frames: int = DEFAULT_MIN_FRAMES,
    num_frames: int | None = None,
) -> SampledVideo:
    """Uniformly sample a path, mp4 bytes or frames (decoding only the needed frames of encoded video).

    ``num_frames`` (exact count) overrides ``fps``. Frame arrays use their ``.fps`` (:class:`Frames`) or
    :data:`DEFAULT_FRAMES_FPS`. Videos shorter than ``min_frames`` are padded by repeating frames.
    """
    if num_frames is not None:
        fps = None
    if _is_frames(video):
        from roboreward.video import as_frames

        source_fps = float(getattr(video, "fps", DEFAULT_FRAMES_FPS))
        arr = as_frames(np.asarray(video))
        idx = sample_indices(
            len(arr), source_fps, num_frames=num_frames, fps=fps, max_frames=max_frames, min_frames=min_frames
        )
        return SampledVideo(frames=arr[idx], indices=idx, source_fps=source_fps, total_frames=len(arr))
    if isinstance(video, str | Path) and not Path(video).exists():
        raise VideoDecodeError(f"{video}: no such video file")
    return read_video(video, num_frames=num_frames, fps=fps, max_frames=max_frames, min_frames=min_frames)


def output_from_probs(probs: Sequence[float], raw_text: str | None = None) -> RewardOutput:
    """A RewardOutput from a distribution over 1..5: argmax score and expected score."""
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum()
    return RewardOutput(
        score=int(SCORES[int(np.argmax(p))]),
        probs=[float(x) for x in p],
        expected=float(np.dot(p, SCORES)),
        raw_text=raw_text,
    )


# ---------------------------------------------------------------------------------------------------------------
# Local transformers reward model
# ---------------------------------------------------------------------------------------------------------------


class RewardModel:
    """A Qwen-VL reward model scoring (video, instruction) pairs from the answer-token logits.

    ``model`` is a Hub repo id or local folder (loaded with :func:`roboreward.vlm.load_model`), or an already
    loaded model together with ``processor`` (e.g. a model being trained; it is put in eval mode). Batches are
    left padded and the logits of the last position are read, so batched and one-by-one scores agree up to float
    tolerance. ``decode_workers`` threads decode the videos of a ``score_batch`` call in parallel.
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        *,
        processor: Any = None,
        fps: float | None = DEFAULT_FPS,
        max_frames: int = DEFAULT_MAX_FRAMES,
        min_frames: int = DEFAULT_MIN_FRAMES,
        num_frames: int | None = None,
        batch_size: int = 4,
        decode_workers: int = 4,
        dtype: str = "auto",
        device_map: str | dict | None = None,
        device: str | None = None,
        quantization_config: Any = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        template: str | None = None,
        name: str | None = None,
    ) -> None:
        from roboreward import vlm

        if isinstance(model, str | os.PathLike):
            self.model_id = str(model)
            self.model, self.processor = vlm.load_model(
                model,
                dtype=dtype,
                device_map=device_map,
                quantization_config=quantization_config,
                attn_implementation=attn_implementation,
                trust_remote_code=trust_remote_code,
                revision=revision,
            )
            if device is not None and device_map is None and quantization_config is None:
                self.model.to(device)
            elif device is None and device_map is None and quantization_config is None:
                import torch

                if torch.cuda.is_available():
                    self.model.to("cuda")
        else:
            if processor is None:
                raise ValueError("RewardModel(model=<loaded model>) needs processor=")
            self.model, self.processor = model, processor
            self.model_id = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self.model.eval()
        self.family = vlm.model_family(self.model.config)
        self.score_ids = vlm.score_token_ids(self.processor.tokenizer)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.fps, self.max_frames, self.min_frames, self.num_frames = fps, max_frames, min_frames, num_frames
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.template = template
        self.name = name or Path(self.model_id).name or self.model_id

    @property
    def settings(self) -> dict[str, Any]:
        """What produced the scores (recorded in every results file)."""
        return {
            "scorer": "RewardModel",
            "model": self.model_id,
            "family": self.family,
            "fps": self.fps if self.num_frames is None else None,
            "max_frames": self.max_frames,
            "min_frames": self.min_frames,
            "num_frames": self.num_frames,
            "custom_template": self.template is not None,
        }

    def sample(self, video: VideoInput) -> SampledVideo:
        return sample_video(
            video, fps=self.fps, max_frames=self.max_frames, min_frames=self.min_frames, num_frames=self.num_frames
        )

    def score(self, video: VideoInput, instruction: str) -> RewardOutput:
        return self.score_batch([video], [instruction])[0]

    def score_batch(self, videos: Sequence[VideoInput], instructions: Sequence[str]) -> list[RewardOutput]:
        """Score many pairs, ``batch_size`` per forward pass (order preserved)."""
        if len(videos) != len(instructions):
            raise ValueError(f"{len(videos)} videos but {len(instructions)} instructions")
        if self.decode_workers > 1 and sum(not _is_frames(v) for v in videos) > 1:
            # decoders release the GIL: decode encoded videos in parallel (order preserved)
            with ThreadPoolExecutor(min(self.decode_workers, len(videos))) as pool:
                sampled = list(pool.map(self.sample, videos))
        else:
            sampled = [self.sample(v) for v in videos]
        return self.score_sampled(sampled, instructions)

    def score_sampled(self, sampled: Sequence[SampledVideo], instructions: Sequence[str]) -> list[RewardOutput]:
        """Score already sampled clips (see :meth:`sample`)."""
        from roboreward import vlm

        texts = [vlm.prompt_text(self.processor, t, template=self.template) for t in instructions]
        # batch pairs of similar size together (frames, frame size, prompt length) so little is padding;
        # results go back in the caller's order
        order = sorted(
            range(len(texts)), key=lambda i: (len(sampled[i].frames), sampled[i].frames.shape[1:3], len(texts[i]))
        )
        out: list[RewardOutput | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            probs = self._probs([texts[i] for i in chunk], [sampled[i] for i in chunk])
            for i, p in zip(chunk, probs, strict=True):
                out[i] = output_from_probs(p)
        return out  # type: ignore[return-value]

    def _probs(self, texts: Sequence[str], sampled: Sequence[SampledVideo]) -> np.ndarray:
        import torch

        from roboreward import vlm

        batch = vlm.encode(self.processor, self.family, texts, sampled, padding_side="left")
        device = next(self.model.parameters()).device
        batch = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}
        head = self._score_head()
        with torch.inference_mode():
            if head is not None:  # project the last hidden state onto the five score rows of the LM head only
                hidden = self.model.model(**batch, use_cache=False).last_hidden_state[:, -1]
                logits = torch.nn.functional.linear(hidden.to(head[0].device, head[0].dtype), *head)
                return torch.softmax(logits.float(), dim=-1).cpu().numpy()
            logits = self.model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
        return vlm.probs_from_logits(logits, self.score_ids).cpu().numpy()

    def _score_head(self) -> tuple[Any, Any] | None:
        """(weight, bias) rows of the LM head for "1".."5" when the head is a plain ``nn.Linear`` on top of
        ``model.model`` (Qwen-VL ``*ForConditionalGeneration``); None means: use the full forward. Softmax over
        these five logits equals :func:`roboreward.vlm.probs_from_logits` on the full vocabulary logits, without
        the vocabulary-wide projection (151k rows)."""
        import torch

        head = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        if type(head) is not torch.nn.Linear or not hasattr(self.model, "model"):  # quantized / unusual heads
            return None
        # sliced on every call (5 rows: negligible), so a model that is being trained is always read fresh
        ids = torch.tensor(self.score_ids, device=head.weight.device)
        weight = head.weight.detach().index_select(0, ids)
        bias = head.bias.detach().index_select(0, ids) if head.bias is not None else None
        return weight, bias


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible API scorer
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# Loading scorers from a spec string
# ---------------------------------------------------------------------------------------------------------------


def load_scorer(spec: str = DEFAULT_MODEL, **kwargs: Any) -> Scorer:
    """Build a scorer from a spec.

    * ``"tiny"`` / ``"tiny:qwen2_5_vl"`` — a tiny random Qwen-VL built offline (tests, demos without weights);
    * ``"openai:<model>@<base_url>"`` — :class:`ApiScorer` (e.g. ``openai:Qwen/Qwen3-VL-8B@http://gpu:8000/v1``);
    * anything else — a local folder or Hub repo id loaded as :class:`RewardModel`.

    ``kwargs`` go to the scorer (``fps``, ``max_frames``, ``batch_size``, ``device_map``, ``api_key``, ...).
    """
    spec = str(spec).strip()
    if not spec:
        raise ValueError("empty scorer spec")
    if spec == "tiny" or spec.startswith("tiny:"):
        from roboreward.tiny import tiny_model_dir

        family = spec.partition(":")[2] or "qwen3_vl"
        if family not in ("qwen3_vl", "qwen2_5_vl"):
            raise ValueError(f"tiny scorer family must be qwen3_vl or qwen2_5_vl, got {family!r}")
        kwargs.setdefault("name", spec)
        return RewardModel(tiny_model_dir(family), **kwargs)  # type: ignore[arg-type]
    if spec.startswith("openai:"):
        model, sep, base_url = spec[len("openai:") :].partition("@")
        if not model or (sep and not base_url):
            raise ValueError(f"API scorer spec must be 'openai:<model>@<base_url>', got {spec!r}")
        if base_url:
            kwargs["base_url"] = base_url
        return ApiScorer(model=model, **kwargs)
    return RewardModel(spec, **kwargs)


def scorer_settings(scorer: Any) -> dict[str, Any]:
    """A scorer's ``settings`` (fps, frames, model) or what can be said about an arbitrary scorer."""
    settings = getattr(scorer, "settings", None)
    if isinstance(settings, dict):
        return dict(settings)
    return {"scorer": type(scorer).__name__, "name": getattr(scorer, "name", "")}


# ---------------------------------------------------------------------------------------------------------------
# Dense progress curves
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ProgressCurve:
    """Scores of growing prefixes: ``times`` (end of each prefix, seconds), their outputs, and VOC.

    ``voc`` is the Spearman correlation between expected progress and time (0 when undefined, e.g. a
    constant curve); ``fractions`` are the prefix lengths as fractions of the video.
    """

    times: list[float]
    outputs: list[RewardOutput]
    voc: float
    fractions: list[float] = field(default_factory=list)

    @property
    def progress(self) -> list[float]:
        """Expected progress of each prefix in [0, 1]."""
        return [o.progress for o in self.outputs]

    @property
    def expected(self) -> list[float]:
        return [o.expected if o.expected is not None else float(o.score) for o in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "times": self.times,
            "fractions": self.fractions,
            "voc": self.voc,
            "outputs": [o.to_dict() for o in self.outputs],
        }

    def plot(self, path: str | os.PathLike, *, title: str = "") -> Path:
        """Save the curve as a PNG: expected score (with the 1..5 distribution as shading) against time."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        probs = [o.probs for o in self.outputs]
        if all(p is not None for p in probs) and len(self.times) > 1:
            grid = np.array(probs).T  # (5, points)
            t = np.asarray(self.times)
            mid = (t[1:] + t[:-1]) / 2
            edges = np.r_[t[0] - (mid[0] - t[0]), mid, t[-1] + (t[-1] - mid[-1])]
            mesh = ax.pcolormesh(edges, np.arange(0.5, 6.0), grid, cmap="Blues", vmin=0, vmax=1, alpha=0.7)
            fig.colorbar(mesh, ax=ax, label="p(score)")
        ax.plot(self.times, self.expected, "o-", color="tab:orange", label="expected score")
        ax.set_ylim(0.5, 5.5)
        ax.set_yticks(list(SCORES))
        ax.set_xlabel("prefix end (s)")
        ax.set_ylabel("score")
        ax.set_title(title or f"progress curve (VOC {self.voc:.2f})")
        ax.legend(loc="upper left")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out


CURVE_MAX_FRAMES = 256
CURVE_MAX_BYTES = 512 * 2**20


def _all_frames(video: VideoInput) -> Frames:
    if _is_frames(video):
        from roboreward.video import as_frames

        return Frames(as_frames(np.asarray(video)), float(getattr(video, "fps", DEFAULT_FRAMES_FPS)))
    if isinstance(video, str | Path) and not Path(video).exists():
        raise VideoDecodeError(f"{video}: no such video file")
    info = probe(video)  # type: ignore[arg-type]  # clear error on bad input before decoding
    # Scorers re-sample each prefix to a few frames, so a uniform proxy of the video is enough: at most
    # CURVE_MAX_FRAMES frames and CURVE_MAX_BYTES of pixels are decoded, whatever the video's length.
    per_frame = max(1, info.width * info.height * 3)
    k = max(2, min(info.num_frames, CURVE_MAX_FRAMES, CURVE_MAX_BYTES // per_frame))
    sampled = read_video(video, num_frames=k)
    return Frames(sampled.frames, sampled.sampled_fps)


def progress_curve(
    scorer: Scorer,
    video: VideoInput,
    instruction: str,
    num_points: int = 8,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ProgressCurve:
    """Score ``num_points`` growing prefixes (1/n, 2/n, ..., all of the video) with any scorer.

    Prefixes are passed as :class:`Frames` (frame arrays that keep the video's fps) in one ``score_batch``
    call, so a batched scorer scores them together. ``progress(done, total)`` is called when finished.
    """
    from roboreward.metrics import spearman

    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    frames = _all_frames(video)
    total = len(frames)
    ends = sorted({max(1, math.ceil(total * k / num_points)) for k in range(1, num_points + 1)})
    prefixes = [frames[:e] for e in ends]
    outputs = scorer.score_batch(prefixes, [instruction] * len(prefixes))
    if progress is not None:
        progress(len(prefixes), len(prefixes))
    times = [e / frames.fps for e in ends]
    values = [o.expected if o.expected is not None else float(o.score) for o in outputs]
    voc = spearman(values, times) if len(values) > 1 else 0.0
    return ProgressCurve(times=times, outputs=outputs, voc=voc, fractions=[e / total for e in ends])


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def score_command(
    video: Path,
    instruction: str,
    model: str = DEFAULT_MODEL,
    fps: float = DEFAULT_FPS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    num_frames: int | None = None,
    curve: int = 0,
    plot: Annotated[Path | None, typer.Option(help="with --curve: save the progress curve as a PNG here")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score a VIDEO against an INSTRUCTION: score 1-5, the distribution over 1..5 and expected progress.

    --model is a Hub repo id / local folder, "tiny", or "openai:<model>@<base_url>". --curve N also scores
    N growing prefixes (dense progress curve with VOC).
    """
    import json

    if not video.is_file():
        typer.echo(f"error: {video}: no such video file", err=True)
        raise typer.Exit(1)
    try:
        scorer = load_scorer(model, fps=fps, max_frames=max_frames, num_frames=num_frames)
        out = scorer.score(video, instruction)
        pc = progress_curve(scorer, video, instruction, curve) if curve > 0 else None
    except (VideoDecodeError, ValueError, ApiError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    result = {"video": str(video), "instruction": instruction, **out.to_dict(), "progress": out.progress}
    result["settings"] = scorer_settings(scorer)
    if pc is not None:
        result["curve"] = pc.to_dict()
        if plot is not None:
            result["plot"] = str(pc.plot(plot, title=f"{scorer.name}: {instruction} (VOC {pc.voc:.2f})"))
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{scorer.name}: {instruction}")
    table.add_column("score")
    table.add_column("name")
    table.add_column("probability", justify="right")
    for s in SCORES:
        p = out.probs[s - 1] if out.probs else (1.0 if s == out.score else 0.0)
        mark = "[bold green]" if s == out.score else ""
        table.add_row(f"{mark}{s}", f"{mark}{SCORE_NAMES[s]}", f"{mark}{p:.3f}")
    console.print(table)
    exp = f"{out.expected:.3f}" if out.expected is not None else "n/a"
    status = "" if out.parsed else " [red](answer not parseable)[/red]"
    console.print(f"score [bold]{out.score}[/bold]  expected {exp}  progress {out.progress:.3f}{status}")
    if pc is not None:
        curve_table = Table(title=f"progress curve (VOC {pc.voc:.3f})")
        for col in ("t (s)", "fraction", "score", "expected"):
            curve_table.add_column(col, justify="right")
        for t, f, o in zip(pc.times, pc.fractions, pc.outputs, strict=True):
            curve_table.add_row(f"{t:.2f}", f"{f:.2f}", str(o.score), f"{o.expected or o.score:.3f}")
        console.print(curve_table)
