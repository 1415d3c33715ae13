"""Instruction rewriting, counterfactual relabeling ("inverse HER") and paraphrase augmentation.

* :mod:`.lm` — the LM interface (:class:`LM`, :class:`LMRequest`, :class:`LMResult`), :class:`CachedLM` and the
  local :class:`TransformersLM`; :mod:`.openai_lm` — :class:`OpenAIChatLM` for OpenAI-compatible servers;
* :mod:`.cache` — the on-disk cache of LM calls (:class:`LMCache`);
* :mod:`.parse` — prompts and answer parsing; :mod:`.stages` — one function per stage;
* :mod:`.relabeler` — :class:`Relabeler` (the orchestration) and :func:`make_relabeler`.
"""

from __future__ import annotations

from roboreward.relabel.cache import LMCache, content_key, hash_frames
from roboreward.relabel.lm import (
    DEFAULT_TEXT_MODEL,
    DEFAULT_VIDEO_MODEL,
    LM,
    CachedLM,
    LMError,
    LMRequest,
    LMResult,
    TransformersLM,
)
from roboreward.relabel.openai_lm import OpenAIChatLM
from roboreward.relabel.parse import (
    CF_SCORES,
    PREFILLS,
    BadAnswer,
    extract_json,
    parse_json,
    parse_modes,
    parse_validation,
    render,
    rubric_text,
    schemas,
)
from roboreward.relabel.relabeler import RELABEL_SAMPLING, Relabeler, default_cache_dir, make_relabeler

__all__ = [
    "CF_SCORES",
    "DEFAULT_TEXT_MODEL",
    "DEFAULT_VIDEO_MODEL",
    "LM",
    "PREFILLS",
    "RELABEL_SAMPLING",
    "BadAnswer",
    "CachedLM",
    "LMCache",
    "LMError",
    "LMRequest",
    "LMResult",
    "OpenAIChatLM",
    "Relabeler",
    "TransformersLM",
    "content_key",
    "default_cache_dir",
    "extract_json",
    "hash_frames",
    "make_relabeler",
    "parse_json",
    "parse_modes",
    "parse_validation",
    "render",
    "rubric_text",
    "schemas",
]
