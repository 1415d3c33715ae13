"""Shared fixtures. Every test runs offline (HF_HUB_OFFLINE=1) on things the project makes itself."""

from __future__ import annotations

import importlib.util
import os
import sys
import types

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

from roboreward.rl import setup_headless_mujoco  # noqa: E402

# With MUJOCO_GL=osmesa, importing triton (torch) after mujoco segfaults (LLVM clash): import triton first,
# once, for every test module — any test may import metaworld.
setup_headless_mujoco()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """One folder per test session holding the tiny models (built once, ~2 s each)."""
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_qwen3_vl(tiny_cache) -> Path:
    from roboreward.scoring.tiny import build_tiny_model

    return build_tiny_model(tiny_cache / "qwen3_vl", "qwen3_vl")


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl(tiny_cache) -> Path:
    from roboreward.scoring.tiny import build_tiny_model

    return build_tiny_model(tiny_cache / "qwen2_5_vl", "qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_qwen3(tiny_cache) -> Path:
    from roboreward.scoring.tiny import build_tiny_model

    return build_tiny_model(tiny_cache / "qwen3", "qwen3")


def load_module(path: Path) -> types.ModuleType:
    """A script or example (not part of the package) imported from its file and registered under its stem."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def make_frames(n: int = 12, h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """A moving square on a gradient: real structure, deterministic, compresses well."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 200, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    color = rng.integers(50, 255, 3)
    frames = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        img = base.copy()
        x = int((w - 16) * t / max(n - 1, 1))
        img[h // 2 - 8 : h // 2 + 8, x : x + 16] = color
        frames[t] = img.astype(np.uint8)
    return frames


@pytest.fixture
def sample_mp4(tmp_path) -> Path:
    from roboreward.video import write_video

    return write_video(tmp_path / "clip.mp4", make_frames(), fps=10)
