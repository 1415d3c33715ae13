"""The Gradio page: :func:`build_demo` turns a scorer into a ``gr.Blocks`` app, :func:`launch` serves it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from roboreward.demo.analysis import analyse, curve_frame, distribution_frame, headline
from roboreward.demo.checks import DemoInputError, Limits, short
from roboreward.sampling import DEFAULT_MAX_FRAMES
from roboreward.types import Scorer

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

log = logging.getLogger(__name__)


def spaces_gpu() -> Callable | None:
    """``spaces.GPU`` when the ``spaces`` package (Hugging Face ZeroGPU) is importable, else None.

    On ZeroGPU ``spaces`` must be imported before torch initialises CUDA: :func:`roboreward.demo.serve` calls
    this first. (A checkout's ``spaces/`` folder imports as an empty namespace package: it has no ``GPU``.)"""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return None
    gpu = getattr(spaces, "GPU", None)
    return gpu if callable(gpu) else None


def gpu_decorator(fn: Callable, duration: int = 120) -> Callable:
    """``fn`` wrapped in ``spaces.GPU(duration=...)`` on ZeroGPU; ``fn`` itself everywhere else."""
    gpu = spaces_gpu()
    return gpu(duration=duration)(fn) if gpu is not None else fn


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
    import gradio as gr

    return gr


def theme() -> Any:
    """Gradio's default theme with system fonts only (the default one downloads Google Fonts)."""
    gr = _gradio()
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_demo(
    scorer: Scorer,
    *,
    limits: Limits = Limits(),
    examples: Sequence[Sequence[str]] = (),
    curve_points: int = 8,
    strip_frames: int = DEFAULT_MAX_FRAMES,
    model_name: str | None = None,
    note: str = "",
) -> gr.Blocks:
    """The ``gr.Blocks`` app scoring uploads with ``scorer``. The API endpoint is ``/score``. Uploads are
    deleted ``limits.keep_uploads_s`` seconds after they arrive, and all of them when the server stops."""
    gr = _gradio()
    model_name = model_name or getattr(scorer, "name", type(scorer).__name__)

    def score(video: str | None, instruction: str, points: float):
        try:
            result = analyse(
                scorer, video, instruction, limits=limits, curve_points=int(points), strip_frames=strip_frames
            )
        except DemoInputError as exc:
            raise gr.Error(str(exc), title="Cannot score this input") from None
        except Exception as exc:  # keep serving; tell the user what failed
            log.exception("scoring failed")
            raise gr.Error(f"Scoring failed: {type(exc).__name__}: {short(exc)}", title="Scoring failed") from None
        strip = [(f, f"t = {t:.1f} s") for f, t in zip(result.frames, result.frame_times, strict=True)]
        return (
            headline(result, model_name),
            distribution_frame(result),
            curve_frame(result),
            strip,
            result.to_dict(),
        )

    score_fn = gpu_decorator(score)

    # uploads (and gradio's copies of them) are deleted keep_uploads_s after they arrive, checked every minute
    keep = int(limits.keep_uploads_s)
    with gr.Blocks(title="RoboReward — score a robot video", delete_cache=(min(60, keep), keep)) as demo:
        gr.Markdown(
            "# RoboReward\nUpload a robot episode video, type the instruction the robot was given and press "
            "**Score**. The reward model judges the video's *final state* on the 1-5 progress rubric "
            f"(model: `{model_name}`). Limits: {limits.max_file_mb:g} MB, {limits.max_duration_s:g} s."
            + (f"\n\n{note}" if note else "")
        )
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(label="Robot video", sources=["upload"], elem_id="video-input")
                instruction = gr.Textbox(
                    label="Instruction", placeholder="e.g. open the top drawer", lines=2, elem_id="instruction"
                )
                points = gr.Slider(0, 16, value=curve_points, step=1, label="Progress-curve points (0 = off)")
                button = gr.Button("Score", variant="primary", elem_id="score-button")
                if examples:
                    gr.Examples(examples=[list(e) for e in examples], inputs=[video, instruction])
            with gr.Column(scale=1):
                result_md = gr.Markdown(elem_id="result")
                dist = gr.BarPlot(
                    x="score",
                    y="probability",
                    y_lim=[0, 1],
                    sort="x",
                    height=240,
                    label="Distribution over 1..5",
                )
                curve = gr.LinePlot(
                    x="time_s",
                    y="progress_pct",
                    x_title="time (s)",
                    y_title="expected progress (%)",
                    y_lim=[0, 100],
                    label="Progress curve over the video",
                    height=240,
                )
        strip = gr.Gallery(
            label="Sampled frames",
            columns=strip_frames,
            rows=1,
            height=200,
            object_fit="contain",
            elem_id="frames",
        )
        with gr.Accordion("Details (JSON)", open=False):
            details = gr.JSON(label="Details")
        button.click(
            score_fn,
            inputs=[video, instruction, points],
            outputs=[result_md, dist, curve, strip, details],
            api_name="score",
        )
    return demo


def launch(
    demo: gr.Blocks,
    *,
    host: str | None = "127.0.0.1",
    port: int | None = None,
    limits: Limits = Limits(),
    concurrency: int = 1,
    max_queue: int = 32,
    allowed_paths: Sequence[str] = (),
    block: bool = True,
) -> gr.Blocks:
    """Queue (``concurrency`` jobs at once, ``max_queue`` waiting) and serve ``demo``: uploads over the size
    limit are refused by the server, never a share link, no server-side rendering, no monitoring endpoint.
    ``host=None`` lets gradio read ``GRADIO_SERVER_NAME`` (Spaces set it)."""
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        show_error=True,
        max_file_size=limits.max_file_bytes,
        allowed_paths=[str(p) for p in allowed_paths],
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        prevent_thread_lock=not block,
        quiet=not block,
        theme=theme(),
    )
    return demo
