"""Scorer specs: one string names a scorer (``tiny``, ``openai:<model>@<url>``, a folder or Hub repo id).

:func:`parse_tiny_spec` is the one parser of the ``tiny:<family>`` spec (scoring, training recipes and the demo
all resolve it here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roboreward.types import Scorer

TINY_PREFIX = "tiny:"
#: Families of the tiny random reward models (``tiny`` alone means the first).
TINY_FAMILIES: tuple[str, ...] = ("qwen3_vl", "qwen2_5_vl")


def parse_tiny_spec(spec: str) -> str | None:
    """The family of a ``tiny`` / ``tiny:<family>`` spec, ``None`` when ``spec`` is not a tiny spec.

    Raises ValueError naming the spec for an unknown family.
    """
    spec = str(spec).strip()
    if spec != "tiny" and not spec.startswith(TINY_PREFIX):
        return None
    family = spec.partition(":")[2] or TINY_FAMILIES[0]
    if family not in TINY_FAMILIES:
        known = " and ".join(TINY_PREFIX + f for f in TINY_FAMILIES)
        raise ValueError(f"{spec!r}: unknown tiny family {family!r}; tiny families are {known}")
    return family


def resolve_tiny(spec: str) -> Path | None:
    """The cached tiny model folder for a tiny spec (built on first use), ``None`` for any other spec."""
    family = parse_tiny_spec(spec)
    if family is None:
        return None
    from roboreward.scoring.tiny import tiny_model_dir

    return tiny_model_dir(family)  # type: ignore[arg-type]


def resolve_builtin(spec: str) -> Path | None:
    """The local folder of a model the package makes or ships itself: a ``tiny`` spec (built on first use) or a
    bundled model name such as ``metaworld`` (:mod:`roboreward.scoring.bundled`); ``None`` for any other spec."""
    from roboreward.scoring.bundled import BUNDLED, bundled_model_dir

    if str(spec).strip() in BUNDLED:
        return bundled_model_dir(str(spec).strip())
    return resolve_tiny(spec)


def load_scorer(spec: str | None = None, **kwargs: Any) -> Scorer:
    """Build a scorer from a spec (default :data:`~roboreward.scoring.common.DEFAULT_MODEL`).

    * ``"tiny"`` / ``"tiny:qwen2_5_vl"`` — a tiny random Qwen-VL built offline (tests, demos without weights);
    * ``"metaworld"`` — the bundled reward model trained on Meta-World (docs/reward_quality.md);
    * ``"openai:<model>@<base_url>"`` — :class:`~roboreward.scoring.api.ApiScorer`
      (e.g. ``openai:Qwen/Qwen3-VL-8B@http://gpu:8000/v1``); ``"vllm:<model>@<base_url>"`` — the same for a reward
      checkpoint behind ``vllm serve``, asked with the answer primed (p(1..5) without generation);
    * anything else — a local folder or Hub repo id loaded as :class:`~roboreward.scoring.local.RewardModel`.

    ``kwargs`` go to the scorer (``sampling`` or ``fps`` / ``max_frames`` / ``min_frames`` / ``num_frames``,
    ``batch_size``, ``device_map``, ``api_key``, ...).
    """
    from roboreward.scoring.api import api_scorer_from_spec
    from roboreward.scoring.common import DEFAULT_MODEL
    from roboreward.scoring.local import RewardModel

    spec = str(DEFAULT_MODEL if spec is None else spec).strip()
    if not spec:
        raise ValueError("empty scorer spec")
    builtin = resolve_builtin(spec)
    if builtin is not None:
        kwargs.setdefault("name", spec)
        return RewardModel(builtin, **kwargs)
    api = api_scorer_from_spec(spec, **kwargs)
    if api is not None:
        return api
    return RewardModel(spec, **kwargs)


def is_api_spec(spec: str | None) -> bool:
    """True for an ``openai:`` / ``vllm:`` spec (a server scorer: no local batch size, device or dtype)."""
    from roboreward.scoring.api import API_SCHEMES

    return str(spec or "").partition(":")[0] in API_SCHEMES
