"""Reward scoring: local Qwen-VL reward models, OpenAI-compatible API models, and dense progress curves.

Every scorer follows :class:`roboreward.types.Scorer` (``score`` / ``score_batch``) and returns
:class:`~roboreward.types.RewardOutput`:

* :class:`RewardModel` (:mod:`.local`) — a transformers Qwen3-VL / Qwen2.5-VL checkpoint; the distribution over
  1..5 is read from the answer-token logits (:mod:`.vlm` holds the model I/O shared with training).
* :class:`ApiScorer` (:mod:`.api`) — any OpenAI-compatible chat-completions server (vLLM, proprietary APIs).
* :func:`load_scorer` (:mod:`.spec`) builds either from a spec string (``tiny`` models come from :mod:`.tiny`);
  :func:`progress_curve` (:mod:`.curve`) scores growing prefixes of a video with any scorer.
"""

from __future__ import annotations

from roboreward.scoring import vlm
from roboreward.scoring.api import (
    API_SCHEMES,
    ApiError,
    ApiScorer,
    api_scorer_from_spec,
    probs_at,
    probs_from_top_logprobs,
)
from roboreward.scoring.common import (
    DEFAULT_FRAMES_FPS,
    DEFAULT_MODEL,
    Frames,
    is_frames,
    output_from_probs,
    resolve_sampling,
    sample_video,
    scorer_settings,
)
from roboreward.scoring.curve import CURVE_MAX_BYTES, CURVE_MAX_FRAMES, ProgressCurve, progress_curve
from roboreward.scoring.local import RewardModel
from roboreward.scoring.spec import (
    TINY_FAMILIES,
    is_api_spec,
    load_scorer,
    parse_tiny_spec,
    resolve_builtin,
    resolve_tiny,
)

__all__ = [
    "API_SCHEMES",
    "CURVE_MAX_BYTES",
    "CURVE_MAX_FRAMES",
    "DEFAULT_FRAMES_FPS",
    "DEFAULT_MODEL",
    "TINY_FAMILIES",
    "ApiError",
    "ApiScorer",
    "Frames",
    "ProgressCurve",
    "RewardModel",
    "api_scorer_from_spec",
    "is_api_spec",
    "is_frames",
    "load_scorer",
    "output_from_probs",
    "parse_tiny_spec",
    "probs_at",
    "probs_from_top_logprobs",
    "progress_curve",
    "resolve_sampling",
    "resolve_builtin",
    "resolve_tiny",
    "sample_video",
    "scorer_settings",
    "vlm",
]
