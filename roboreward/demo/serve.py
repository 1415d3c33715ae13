"""Serving the demo: which model (argument, environment, offline default), which examples, the Space's settings."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roboreward.demo.app import build_demo, launch, spaces_gpu
from roboreward.demo.checks import DemoInputError, Limits
from roboreward.scoring import DEFAULT_MODEL, load_scorer

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

log = logging.getLogger(__name__)

#: Environment variables read by the Space / CLI (arguments take precedence).
ENV_MODEL = "ROBOREWARD_MODEL"
ENV_EXAMPLES = "ROBOREWARD_DEMO_EXAMPLES"
#: What runs when nothing is set and the Hub is offline: a tiny random Qwen3-VL the project builds itself.
OFFLINE_MODEL = "tiny"


def default_model_spec(model: str | None = None) -> str:
    """The model to serve: the argument, else ``$ROBOREWARD_MODEL``, else the released 4B model, or the tiny
    offline model when ``HF_HUB_OFFLINE`` is set (so the app starts with no network)."""
    if model:
        return model
    if os.environ.get(ENV_MODEL):
        return os.environ[ENV_MODEL]
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return OFFLINE_MODEL if offline else DEFAULT_MODEL


def example_rows(root: str | os.PathLike | None, limit: int = 4) -> list[list[str]]:
    """[video path, instruction] pairs from a dataset in the released layout (its first split present)."""
    if not root:
        return []
    from roboreward.dataset import available_splits, read_split

    splits = available_splits(root)
    if not splits:
        log.warning("no split with metadata.jsonl under %s: no examples", root)
        return []
    split = "test" if "test" in splits else splits[0]
    return [[str(r.video_path), r.task] for r in read_split(root, split, limit=limit)]


def find_examples(examples: str | os.PathLike | None = None) -> Path | None:
    """The dataset to take examples from: the argument, else ``$ROBOREWARD_DEMO_EXAMPLES``, else None."""
    root = examples or os.environ.get(ENV_EXAMPLES)
    if not root:
        return None
    path = Path(root)
    if not path.is_dir():
        raise DemoInputError(f"examples: {path} is not a folder (a dataset in the released layout)")
    return path.resolve()


def serve(
    model: str | None = None,
    *,
    examples: str | os.PathLike | None = None,
    limits: Limits = Limits(),
    host: str | None = "127.0.0.1",
    port: int | None = None,
    concurrency: int = 1,
    curve_points: int = 8,
    scorer_kwargs: dict[str, Any] | None = None,
    block: bool = True,
) -> gr.Blocks:
    """Load the scorer named by ``model`` (see :func:`default_model_spec`), build the app and serve it."""
    spaces_gpu()  # ZeroGPU: before torch is imported by the scorer
    spec = default_model_spec(model)
    root = find_examples(examples)
    note = (
        "⚠️ Running a tiny **randomly initialised** model (offline mode): the scores are meaningless."
        if spec.split(":")[0] == OFFLINE_MODEL
        else ""
    )
    log.info("loading scorer %s", spec)
    demo = build_demo(
        load_scorer(spec, **(scorer_kwargs or {})),
        limits=limits,
        examples=example_rows(root),
        curve_points=curve_points,
        model_name=spec,
        note=note,
    )
    return launch(
        demo,
        host=host,
        port=port,
        limits=limits,
        concurrency=concurrency,
        allowed_paths=[str(root)] if root else (),
        block=block,
    )


def serve_from_env(*, block: bool = True) -> gr.Blocks:
    """:func:`serve` configured by the environment, as on a Space: ``ROBOREWARD_MODEL``,
    ``ROBOREWARD_DEMO_EXAMPLES``, ``ROBOREWARD_MAX_FILE_MB``, ``ROBOREWARD_MAX_DURATION_S``,
    ``ROBOREWARD_CONCURRENCY``; the host and port come from ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``."""
    env = os.environ
    return serve(
        env.get(ENV_MODEL) or None,
        examples=env.get(ENV_EXAMPLES) or None,
        limits=Limits(
            max_file_mb=float(env.get("ROBOREWARD_MAX_FILE_MB", Limits.max_file_mb)),
            max_duration_s=float(env.get("ROBOREWARD_MAX_DURATION_S", Limits.max_duration_s)),
        ),
        host=None,
        concurrency=int(env.get("ROBOREWARD_CONCURRENCY", "1")),
        block=block,
    )
