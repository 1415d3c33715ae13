"""The two evaluation protocols and HELM's scorers.

``roboreward`` (the default) is ours: explicit frames (:class:`~roboreward.sampling.FrameSampling`: 2 fps, 4-8
frames), the [video, text] message the checkpoints were trained on, the score read from the answer-token logits
(argmax of p(1..5)), models compared on the examples every model has.

``helm`` reproduces HELM's RoboRewardBench run (stanford-crfm/helm, branch ``rob``; see
:mod:`roboreward.evaluation.helm` for the pure parts): a [text, video] message; for a local checkpoint the
whole mp4 through the checkpoint's own video processor (Qwen3-VL: 2 fps, 4-768 frames, its pixel budget) and
``generate`` with the checkpoint's ``generation_config`` and ``max_new_tokens=5000`` (HELM's
``Qwen3VLMClient``); for an API model, HELM's ``sample_video_frames`` path: 1-fps JPEG frames after the text,
``temperature=0``; the FIRST ``answer: <number>`` parsed as a raw float; each model on the instances it
answered; the mean over the subset columns present; HELM's long subset names; robo_arena as HELM's
1,000-instance sample.

:meth:`EvalProtocol.settings` lists every setting of a run (recorded in every results file and the leaderboard).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.evaluation import helm
from roboreward.rubric import parse_answer as roboreward_parse_answer
from roboreward.rubric import reward_prompt
from roboreward.sampling import FrameSampling
from roboreward.types import RewardOutput

PROTOCOLS: tuple[str, ...] = ("roboreward", "helm")
#: ``--max-frames all``: no cap on the frames sampled at ``fps`` (the whole video).
ALL_FRAMES = "all"
_ALL_FRAMES_CAP = 1_000_000


def parse_max_frames(value: str | int | None) -> int | str | None:
    """``"all"`` (any case), a positive int, or None; anything else raises ValueError."""
    if value is None or isinstance(value, int):
        if isinstance(value, int) and value < 1:
            raise ValueError(f"max_frames must be >= 1 or 'all', got {value}")
        return value
    text = str(value).strip().lower()
    if text == ALL_FRAMES:
        return ALL_FRAMES
    try:
        return parse_max_frames(int(text))
    except ValueError:
        raise ValueError(f"max_frames must be a positive integer or 'all', got {value!r}") from None


@dataclass(frozen=True)
class EvalProtocol:
    """How models are asked and scored (see the module docstring); ``None`` fields take the protocol's default.

    ``fps`` / ``max_frames`` / ``num_frames``: under ``roboreward`` the explicit frame sampling; under ``helm``
    overrides of the checkpoint video processor's own ``fps`` / ``max_frames`` (``num_frames`` is not
    HELM's and is refused there). ``max_frames="all"`` removes the frame cap under both.
    """

    name: str = "roboreward"
    fps: float | None = None
    max_frames: int | str | None = None
    num_frames: int | None = None
    max_new_tokens: int = helm.HELM_MAX_NEW_TOKENS
    robo_arena_instances: int | None = helm.HELM_ROBO_ARENA_INSTANCES
    seed: int = helm.HELM_SAMPLE_SEED

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {self.name!r}")
        object.__setattr__(self, "max_frames", parse_max_frames(self.max_frames))
        if self.name == "helm" and self.num_frames is not None:
            raise ValueError("--num-frames is not part of HELM's method; use --fps / --max-frames with --protocol helm")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.robo_arena_instances is not None and self.robo_arena_instances < 1:
            raise ValueError(f"robo_arena_instances must be >= 1 or None, got {self.robo_arena_instances}")

    @property
    def is_helm(self) -> bool:
        return self.name == "helm"

    def sampling(self) -> FrameSampling:
        """The explicit frame sampling of the ``roboreward`` protocol."""
        max_frames = _ALL_FRAMES_CAP if self.max_frames == ALL_FRAMES else self.max_frames
        # a --max-frames below the default minimum lowers the minimum with it (as the scorers always clamped)
        min_frames = min(max_frames, FrameSampling.min_frames) if isinstance(max_frames, int) else None
        return FrameSampling.from_options(
            fps=self.fps, max_frames=max_frames, num_frames=self.num_frames, min_frames=min_frames
        )

    def video_processor_kwargs(self) -> dict[str, Any]:
        """``processor_kwargs`` for the checkpoint's video processor under ``helm`` (empty: its own defaults)."""
        kwargs: dict[str, Any] = {}
        if self.fps is not None:
            kwargs["fps"] = float(self.fps)
        if self.max_frames is not None:
            kwargs["max_frames"] = _ALL_FRAMES_CAP if self.max_frames == ALL_FRAMES else int(self.max_frames)
        return kwargs

    def settings(self) -> dict[str, Any]:
        """Every setting of the protocol, by name (what the docs table lists)."""
        if not self.is_helm:
            s = self.sampling().as_dict()
            if self.max_frames == ALL_FRAMES:
                s["max_frames"] = ALL_FRAMES
            return {
                "protocol": "roboreward",
                "message_order": "video,text",
                "frames": "explicit (FrameSampling), do_sample_frames=False",
                **s,
                "api_frames": "the same sampled frames (JPEG image_url or one mp4 video_url)",
                "decoding": "logits: argmax of p(1..5) at the answer position (API: greedy text, logprobs if served)",
                "parsing": "logits; API text: last ANSWER match, integer 1..5",
                "unparsed_error": 4,
                "aggregation": "examples every model has; macro = mean over subsets",
                "subset_names": "release",
                "robo_arena_instances": None,
            }
        return {
            "protocol": "helm",
            "message_order": "text,video",
            "frames": "the checkpoint's video processor on the whole mp4",
            "fps": self.fps,
            "max_frames": self.max_frames,
            "min_frames": None,
            "num_frames": None,
            "api_frames": f"{helm.HELM_FRAMES_PER_SECOND} fps JPEG frames (HELM sample_video_frames)",
            "decoding": "generate with the checkpoint's generation_config (API: temperature 0)",
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "parsing": "first answer: <number>, else a leading number; raw float",
            "unparsed_error": helm.HELM_PARSE_FAILURE_ERROR,
            "aggregation": "each model on the instances it answered; macro = mean over the subset columns present "
            "(HELM's 23 leaderboard subsets when the data has them)",
            "subset_names": "helm",
            "robo_arena_instances": self.robo_arena_instances,
            "robo_arena_seed": helm.HELM_SAMPLE_SEED,
        }


def helm_row_answer(row: dict[str, Any]) -> float | None:
    """The answer HELM's metric reads from a results row: its ``raw_text`` parsed HELM's way, else (no text: a
    logits scorer) its ``score``; None for an unparseable answer."""
    if row.get("raw_text") is not None:
        return helm.parse_answer(row["raw_text"])
    return None if row.get("score") is None else float(row["score"])


def _text_output(text: str) -> RewardOutput:
    score = roboreward_parse_answer(text)
    return RewardOutput(score=score or 1, expected=None, raw_text=text, parsed=score is not None)


class HelmLocalScorer:
    """A local Qwen-VL checkpoint asked as HELM's ``Qwen3VLMClient`` asks it: ``[text, video path]`` through
    ``processor.apply_chat_template`` (the checkpoint's own video processor samples the whole mp4), then
    ``model.generate(max_new_tokens=...)`` with the checkpoint's generation_config, one example at a time.
    ``torch.manual_seed(seed)`` before each generation makes sampled decoding repeatable (HELM does not seed;
    it caches)."""

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        protocol: EvalProtocol,
        name: str | None = None,
        dtype: str = "auto",
        device_map: str | dict | None = None,
        revision: str | None = None,
        template: str | None = None,
    ) -> None:
        from roboreward.scoring.vlm import load_model, model_family

        self.model_id = str(model)
        self.protocol = protocol
        self.model, self.processor = load_model(model, dtype=dtype, device_map=device_map, revision=revision)
        if device_map is None:
            import torch

            if torch.cuda.is_available():
                self.model.to("cuda")
        self.model.eval()
        self.family = model_family(self.model.config)
        self.template = template
        self.name = name or Path(self.model_id).name or self.model_id

    @property
    def settings(self) -> dict[str, Any]:
        import transformers

        gen = self.model.generation_config
        return {
            "scorer": "HelmLocalScorer",
            "model": self.model_id,
            "family": self.family,
            "generation_config": {
                k: getattr(gen, k, None) for k in ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
            },
            "video_processor": type(getattr(self.processor, "video_processor", None)).__name__,
            "video_processor_kwargs": self.protocol.video_processor_kwargs(),
            "transformers": transformers.__version__,
            "custom_template": self.template is not None,
        }

    def messages(self, video: str | os.PathLike, instruction: str) -> list[dict[str, Any]]:
        """HELM's message: the prompt text first, then the video file."""
        text = reward_prompt(instruction, self.template)
        return [{"role": "user", "content": [{"type": "text", "text": text}, {"type": "video", "video": str(video)}]}]

    def generate(self, video: str | os.PathLike, instruction: str) -> str:
        import torch

        kwargs = self.protocol.video_processor_kwargs()
        inputs = self.processor.apply_chat_template(
            self.messages(video, instruction),
            tokenize=True,
            add_generation_prompt=True,
            return_dict=True,
            return_tensors="pt",
            **({"processor_kwargs": kwargs} if kwargs else {}),
        )
        inputs = inputs.to(next(self.model.parameters()).device)
        torch.manual_seed(self.protocol.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.protocol.max_new_tokens)
        trimmed = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(trimmed, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]

    def score(self, video: Any, instruction: str) -> RewardOutput:
        if not isinstance(video, str | os.PathLike):
            raise TypeError("the helm protocol hands the video file to the processor: give a path")
        return _text_output(self.generate(video, instruction))

    def score_batch(self, videos: Sequence[Any], instructions: Sequence[str]) -> list[RewardOutput]:
        """One example at a time, as HELM's client does (batched generation would pad and change answers)."""
        if len(videos) != len(instructions):
            raise ValueError(f"{len(videos)} videos but {len(instructions)} instructions")
        return [self.score(v, t) for v, t in zip(videos, instructions, strict=True)]

    def close(self) -> None:
        del self.model


def helm_jpeg_frames(video: str | os.PathLike, fps: int = helm.HELM_FRAMES_PER_SECOND) -> list[str]:
    """HELM's frames for a model without video input, as JPEG data URIs: every ``int(native_fps // fps)``-th
    frame (:func:`~roboreward.evaluation.helm.frame_indices_1fps`), written as JPEG (OpenCV's quality 95) and
    re-encoded by PIL at its default quality for the request, as HELM's ``encode_base64`` does."""
    from PIL import Image

    from roboreward.video import read_all_frames

    frames, native_fps = read_all_frames(video)
    uris = []
    for i in helm.frame_indices_1fps(len(frames), native_fps, fps):
        first = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frames[i])).save(first, format="JPEG", quality=95)
        second = io.BytesIO()
        Image.open(io.BytesIO(first.getvalue())).save(second, format="JPEG")
        uris.append("data:image/jpeg;base64," + base64.b64encode(second.getvalue()).decode("ascii"))
    return uris


class HelmApiScorer:
    """An OpenAI-compatible chat model asked HELM's way: the prompt text, then the video; ``temperature=0``,
    ``max_tokens`` as HELM's run spec. ``video_mode="frames"`` (``openai:`` specs) sends the 1-fps JPEG frames
    HELM gives models without video input; ``"video_url"`` (``vllm:`` specs: a Qwen-VL checkpoint behind
    ``vllm serve``) sends the whole mp4 file, so the server's copy of the checkpoint's video processor samples it
    as HELM's local client does."""

    def __init__(
        self,
        model: str,
        *,
        protocol: EvalProtocol,
        base_url: str = "http://localhost:8000/v1",
        api_key: str | None = None,
        name: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 4,
        concurrency: int = 4,
        template: str | None = None,
        extra_body: dict[str, Any] | None = None,
        video_mode: str = "frames",
    ) -> None:
        from roboreward.chat_client import ChatClient, check_video_mode

        self.video_mode = check_video_mode(video_mode)
        self.model, self.protocol, self.template = model, protocol, template
        self.extra_body = dict(extra_body or {})
        self.name = name or model
        self._chat = ChatClient(
            base_url, api_key=api_key, timeout=timeout, max_retries=max_retries, concurrency=concurrency
        )

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "scorer": "HelmApiScorer",
            "model": self.model,
            "base_url": self._chat.base_url,
            "video_mode": self.video_mode,
            "temperature": 0.0,
            "custom_template": self.template is not None,
        }

    def request_body(self, video: str | os.PathLike, instruction: str) -> dict[str, Any]:
        """HELM's request: ``[text, image, image, ...]`` or ``[text, video_url]``."""
        from roboreward.chat_client import chat_body

        parts: list[dict[str, Any]] = [{"type": "text", "text": reward_prompt(instruction, self.template)}]
        if self.video_mode == "video_url":
            data = base64.b64encode(Path(video).read_bytes()).decode("ascii")
            parts.append({"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}})
        else:
            parts += [{"type": "image_url", "image_url": {"url": uri}} for uri in helm_jpeg_frames(video)]
        body = chat_body(
            self.model,
            [{"role": "user", "content": parts}],
            temperature=0.0,
            max_tokens=self.protocol.max_new_tokens,
        )
        body.update(self.extra_body)
        return body

    def score(self, video: Any, instruction: str) -> RewardOutput:
        from roboreward.chat_client import message_text

        return _text_output(self._chat.complete(self.request_body(video, instruction), message_text, label=self.model))

    def score_batch(self, videos: Sequence[Any], instructions: Sequence[str]) -> list[RewardOutput]:
        if len(videos) != len(instructions):
            raise ValueError(f"{len(videos)} videos but {len(instructions)} instructions")
        return self._chat.map(lambda pair: self.score(*pair), list(zip(videos, instructions, strict=True)))

    def close(self) -> None:
        self._chat.close()


def make_protocol(protocol: str | EvalProtocol = "roboreward", **options: Any) -> EvalProtocol:
    """An :class:`EvalProtocol` from a name and the :class:`EvalProtocol` fields in ``options`` (``None`` = the
    protocol's default; ``robo_arena_instances``: ``"default"`` HELM's 1,000, ``"all"`` or None every row)."""
    arena = options.pop("robo_arena_instances", "default")
    given = {k: v for k, v in options.items() if v is not None}
    if isinstance(protocol, EvalProtocol):
        if given or arena != "default":
            raise ValueError(f"give {sorted(given) or ['robo_arena_instances']} in the EvalProtocol, not beside it")
        return protocol
    if arena != "default":
        given["robo_arena_instances"] = None if arena in (None, "all") else int(arena)
    return EvalProtocol(protocol, **given)


def load_protocol_scorer(spec: str, protocol: EvalProtocol, **kwargs: Any) -> Any:
    """The scorer of ``spec`` under ``protocol``: :func:`roboreward.scoring.load_scorer` for ``roboreward``;
    :class:`HelmApiScorer` (``openai:<model>@<url>``: 1-fps frames; ``vllm:<model>@<url>``: the whole mp4) or
    :class:`HelmLocalScorer` (a folder, Hub id, ``tiny``) for ``helm``. ``kwargs``: ``batch_size`` and scorer
    options."""
    from roboreward.scoring import load_scorer, resolve_builtin

    if not protocol.is_helm:
        return load_scorer(spec, sampling=protocol.sampling(), **kwargs)
    kwargs.pop("batch_size", None)
    scheme, colon, rest = spec.partition(":")
    if colon and scheme in ("openai", "vllm"):
        model, sep, base_url = rest.partition("@")
        if not model or (sep and not base_url):
            raise ValueError(f"API scorer spec must be '{scheme}:<model>@<base_url>', got {spec!r}")
        kwargs.setdefault("video_mode", "video_url" if scheme == "vllm" else "frames")
        return HelmApiScorer(model, protocol=protocol, **({"base_url": base_url} if base_url else {}), **kwargs)
    builtin = resolve_builtin(spec)
    return HelmLocalScorer(builtin if builtin is not None else spec, protocol=protocol, name=spec, **kwargs)
