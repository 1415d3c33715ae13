"""Model I/O shared by scoring, training and evaluation: loading Qwen VLMs, building the chat prompt with
the video, encoding batches, and reading the 1..5 distribution from the answer-token logits.

The prompt is the released checkpoints' (see :mod:`roboreward.rubric`); the assistant turn is primed with
``ANSWER: `` so the next token is the score digit. Training masks everything but that digit, scoring reads
the logits of the tokens "1".."5" at that position: the two always agree on where the answer is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from roboreward.rubric import ANSWER_PREFIX, SCORES, reward_prompt
from roboreward.video import SampledVideo

Family = Literal["qwen3_vl", "qwen2_5_vl", "qwen2_vl", "other"]

#: Default base models of the recipes and the released reward models.
RELEASED_MODELS: dict[str, str] = {
    "RoboReward-4B": "teetone/RoboReward-4B",
    "RoboReward-8B": "teetone/RoboReward-8B",
}
BASE_MODELS: dict[str, str] = {
    "qwen3-vl-4b": "Qwen/Qwen3-VL-4B-Instruct",
    "qwen3-vl-8b": "Qwen/Qwen3-VL-8B-Instruct",
    "qwen2.5-vl-3b": "Qwen/Qwen2.5-VL-3B-Instruct",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
}


def model_family(config: Any) -> Family:
    """The model family of a transformers config (``model_type``)."""
    mt = getattr(config, "model_type", "")
    if mt in ("qwen3_vl", "qwen3_vl_moe"):
        return "qwen3_vl"
    if mt == "qwen2_5_vl":
        return "qwen2_5_vl"
    if mt == "qwen2_vl":
        return "qwen2_vl"
    return "other"


def build_messages(instruction: str, *, template: str | None = None) -> list[dict[str, Any]]:
    """The user turn: the video, then the rubric prompt with the task (as on the released model cards)."""
    return [
        {
            "role": "user",
            "content": [{"type": "video"}, {"type": "text", "text": reward_prompt(instruction, template)}],
        }
    ]


def prompt_text(processor: Any, instruction: str, *, template: str | None = None) -> str:
    """Chat-formatted prompt ending with the assistant turn primed by ``ANSWER: ``."""
    text = processor.apply_chat_template(
        build_messages(instruction, template=template), tokenize=False, add_generation_prompt=True
    )
    return text + ANSWER_PREFIX


def score_token_ids(tokenizer: Any) -> list[int]:
    """Token ids of "1".."5" (each must be a single token, as in the Qwen vocabulary)."""
    ids = []
    for s in SCORES:
        tok = tokenizer.encode(str(s), add_special_tokens=False)
        if len(tok) != 1:
            raise ValueError(f"score {s} is not a single token in this tokenizer: {tok}")
        ids.append(tok[0])
    return ids


#: Resize video frames like the reference Qwen pipeline (qwen-vl-utils): each frame's pixels are capped so the
#: token cost follows the clip's length. transformers' Qwen-VL video processors (5.2x) keep an uncapped legacy
#: resize unless told; training, scoring and the demo all pass through :func:`encode`, so they agree.
CAP_PIXELS_PER_FRAME = True


def video_kwargs(family: Family, videos: Sequence[SampledVideo], processor: Any = None) -> dict[str, Any]:
    """Processor kwargs describing where the frames came from, so time positions (Qwen3-VL timestamps,
    Qwen2.5-VL ``second_per_grid_ts``) match each video's real timing. The frames are already sampled. With the
    ``processor``, also the per-frame pixel cap (:data:`CAP_PIXELS_PER_FRAME`) where its video processor has it."""
    if family not in ("qwen3_vl", "qwen2_5_vl", "qwen2_vl"):
        return {}
    kwargs: dict[str, Any] = {"video_metadata": [v.metadata() for v in videos], "do_sample_frames": False}
    valid = getattr(getattr(processor, "video_processor", None), "valid_kwargs", None)
    if "cap_pixels_per_frame" in getattr(valid, "__annotations__", {}):
        kwargs["cap_pixels_per_frame"] = CAP_PIXELS_PER_FRAME
    return kwargs


def pad_frames(frames: np.ndarray, minimum: int = 2) -> np.ndarray:
    """Repeat the last frame so a clip has at least ``minimum`` frames and an even count (temporal patch 2)."""
    n = len(frames)
    target = max(minimum, n + (n % 2))
    if target == n:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], target - n, axis=0)], axis=0)


def encode(
    processor: Any,
    family: Family,
    texts: Sequence[str],
    videos: Sequence[SampledVideo],
    *,
    padding_side: str = "left",
) -> Any:
    """Tokenise texts with their videos into one padded batch (``return_tensors="pt"``)."""
    frames = [pad_frames(v.frames) for v in videos]
    tok = processor.tokenizer
    old_side = tok.padding_side
    tok.padding_side = padding_side
    try:
        return processor(
            text=list(texts),
            videos=frames,
            padding=True,
            return_tensors="pt",
            **video_kwargs(family, videos, processor),
        )
    finally:
        tok.padding_side = old_side


def probs_from_logits(logits: Any, ids: Sequence[int]) -> Any:
    """Softmax over the score tokens only: (B, V) logits -> (B, 5) probabilities (float32)."""
    import torch

    sub = logits[..., list(ids)].float()
    return torch.softmax(sub, dim=-1)


def torch_dtype(dtype: str) -> Any:
    """The torch dtype named ``dtype``; ``"auto"``: bfloat16 on a GPU, float32 on the CPU."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, dtype)


def load_model(
    name_or_path: str | os.PathLike,
    *,
    dtype: str = "auto",
    device_map: str | dict | None = None,
    quantization_config: Any = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> tuple[Any, Any]:
    """Load a VLM and its processor by Hub repo id or local path (safetensors; remote code off by default)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs: dict[str, Any] = dict(
        dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code, revision=revision, use_safetensors=True
    )
    if device_map is not None:
        kwargs["device_map"] = device_map
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(str(name_or_path), **kwargs)
    processor = AutoProcessor.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code, revision=revision)
    return model, processor


def freeze_vision_tower(model: Any) -> int:
    """Freeze the vision encoder; the projector (Qwen's ``visual.merger`` / deepstack mergers) and the LLM stay
    trainable, as in the paper. Returns the number of frozen parameters."""
    frozen = 0
    for name, p in model.named_parameters():
        if ".visual." in f".{name}" and "merger" not in name:
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen
