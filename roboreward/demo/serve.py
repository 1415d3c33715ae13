"""Serving the demo: which model (argument, environment, offline default), which examples, the Space's settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roboreward.demo.app import build_demo, launch, spaces_gpu
from roboreward.demo.checks import DemoInputError, Limits
from roboreward.scoring import DEFAULT_MODEL, load_scorer
from roboreward.types import Example

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

log = logging.getLogger(__name__)

#: Environment variables read by the Space / CLI (arguments take precedence).
ENV_MODEL = "ROBOREWARD_MODEL"
ENV_EXAMPLES = "ROBOREWARD_DEMO_EXAMPLES"
#: What runs when nothing is set and the Hub is offline: the bundled Meta-World reward model
#: (:mod:`roboreward.scoring.bundled`, docs/reward_quality.md), so a newcomer sees meaningful scores on the sample.
OFFLINE_MODEL = "metaworld"


def default_model_spec(model: str | None = None) -> str:
    """The model to serve: the argument, else ``$ROBOREWARD_MODEL``, else the released 4B model, or the bundled
    Meta-World model when ``HF_HUB_OFFLINE`` is set (so the app starts with no network)."""
    if model:
        return model
    if os.environ.get(ENV_MODEL):
        return os.environ[ENV_MODEL]
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return OFFLINE_MODEL if offline else DEFAULT_MODEL


def example_rows(root: str | os.PathLike | None, limit: int = 4) -> list[list[str]]:
    """[video path, instruction] pairs from a dataset in the released layout (its test split, else its first
    split): ``limit`` rows from as many different episodes as it has (see :func:`spread_over_episodes`)."""
    if not root:
        return []
    from roboreward.dataset import available_splits, read_split

    splits = available_splits(root)
    if not splits:
        log.warning("no split with metadata.jsonl under %s: no examples", root)
        return []
    split = "test" if "test" in splits else splits[0]
    return [[str(r.video_path), r.task] for r in spread_over_episodes(read_split(root, split), limit)]


def spread_over_episodes(rows: Sequence[Example], limit: int) -> list[Example]:
    """Up to ``limit`` rows taken round-robin over the episodes (subset, source and ``episode_id``; else the
    file) in file order: the first row of each episode, then the second of each, ... so the examples show
    several episodes."""
    episodes: dict[str, list[Example]] = {}
    for row in rows:
        key = f"{row.subset}/{row.source}/{row.episode_id}" if row.episode_id else row.file_name
        episodes.setdefault(key, []).append(row)
    picked: list[Example] = []
    for rank in range(max((len(v) for v in episodes.values()), default=0)):
        picked += [clips[rank] for clips in episodes.values() if rank < len(clips)]
        if len(picked) >= limit:
            break
    return picked[:limit]


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
        "⚠️ Running a tiny **randomly initialised** model: the scores are meaningless."
        if spec.split(":")[0] == "tiny"
        else "ℹ️ Running the bundled **Meta-World** reward model (offline mode): trained on simulated Sawyer tasks "
        "only; real-robot videos want `teetone/RoboReward-4B` or `-8B`."
        if spec == OFFLINE_MODEL
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
    ``ROBOREWARD_MAX_PIXELS``, ``ROBOREWARD_KEEP_UPLOADS_S``, ``ROBOREWARD_CONCURRENCY``; the host and port
    come from ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``."""
    env = os.environ
    return serve(
        env.get(ENV_MODEL) or None,
        examples=env.get(ENV_EXAMPLES) or None,
        limits=Limits(
            max_file_mb=float(env.get("ROBOREWARD_MAX_FILE_MB", Limits.max_file_mb)),
            max_duration_s=float(env.get("ROBOREWARD_MAX_DURATION_S", Limits.max_duration_s)),
            max_pixels=int(env.get("ROBOREWARD_MAX_PIXELS", Limits.max_pixels)),
            keep_uploads_s=int(env.get("ROBOREWARD_KEEP_UPLOADS_S", Limits.keep_uploads_s)),
        ),
        # read here, not by gradio: it reads GRADIO_SERVER_PORT once, when its server module is first imported
        host=env.get("GRADIO_SERVER_NAME") or None,
        port=int(env["GRADIO_SERVER_PORT"]) if env.get("GRADIO_SERVER_PORT") else None,
        concurrency=int(env.get("ROBOREWARD_CONCURRENCY", "1")),
        block=block,
    )
