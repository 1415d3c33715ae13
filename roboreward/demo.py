"""The Gradio demo: upload a robot video, type the instruction, press Score.

:func:`build_demo` turns any :class:`~roboreward.types.Scorer` into a ``gr.Blocks`` app showing the 1-5
score with its rubric sentence (from the released model card's prompt), the distribution over 1..5, the
expected progress, the sampled frames and a dense progress curve (scores of growing prefixes of the video).
:func:`launch` serves it with a queue, an upload size limit and no share link; :func:`demo_command` is the
``roboreward demo`` CLI and ``spaces/demo/app.py`` the Hugging Face Space entry point.

Bad input (no video, a non-video file, a corrupt or empty video, one over the size or duration limit, an
empty instruction) raises ``gr.Error`` with a message naming the problem; the app keeps serving.
Gradio, torch and the model are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from roboreward.rubric import SCORE_NAMES, SCORES, load_prompt
from roboreward.scoring import DEFAULT_MODEL, load_scorer, progress_curve
from roboreward.types import RewardOutput, Scorer
from roboreward.video import VideoDecodeError, VideoInfo, probe, read_video

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr
    import pandas as pd

log = logging.getLogger(__name__)

#: Environment variables read by the Space / CLI (arguments take precedence).
ENV_MODEL = "ROBOREWARD_MODEL"
ENV_EXAMPLES = "ROBOREWARD_DEMO_EXAMPLES"
#: What runs when nothing is set and the Hub is offline: a tiny random Qwen3-VL the project builds itself.
OFFLINE_MODEL = "tiny"


class DemoInputError(ValueError):
    """Input the demo refuses (shown in the page as a ``gr.Error``)."""


@dataclass(frozen=True)
class Limits:
    """What the demo accepts. Uploads over ``max_file_mb`` are refused by the server before they land."""

    max_file_mb: float = 50.0
    max_duration_s: float = 120.0
    max_instruction_chars: int = 1000

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


@dataclass
class DemoResult:
    """Everything the page shows for one (video, instruction)."""

    output: RewardOutput
    info: VideoInfo
    frames: np.ndarray  # (K, H, W, 3) sampled for the strip
    frame_times: list[float]
    curve_times: list[float] = field(default_factory=list)
    curve_progress: list[float] = field(default_factory=list)  # expected progress in [0, 1] per prefix
    voc: float | None = None
    seconds: float = 0.0

    @property
    def probs(self) -> list[float]:
        """The distribution over 1..5 (one-hot on the parsed score for text-only scorers)."""
        if self.output.probs is not None:
            return [float(p) for p in self.output.probs]
        return [1.0 if s == self.output.score else 0.0 for s in SCORES]

    def to_dict(self) -> dict[str, Any]:
        """The JSON the page's "details" box (and API clients) receive."""
        return {
            "score": int(self.output.score),
            "name": SCORE_NAMES[self.output.score],
            "rubric": rubric_sentences()[self.output.score],
            "probs": self.probs,
            "has_distribution": self.output.probs is not None,
            "expected": self.output.expected,
            "progress": self.output.progress,
            "parsed": self.output.parsed,
            "raw_text": self.output.raw_text,
            "curve": {
                "times": self.curve_times,
                "progress": self.curve_progress,
                "voc": self.voc,
            },
            "frame_times": self.frame_times,
            "video": {
                "frames": self.info.num_frames,
                "fps": self.info.fps,
                "width": self.info.width,
                "height": self.info.height,
                "duration_s": self.info.duration,
            },
            "seconds": self.seconds,
        }


@cache
def rubric_sentences() -> dict[int, str]:
    """The card's rubric line for each score, read from the reward prompt file (``N - Name: sentence``)."""
    found = {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"^([1-5]) - [^:\n]+:\s*(.+)$", load_prompt("reward_prompt.txt"), re.MULTILINE)
    }
    missing = [s for s in SCORES if s not in found]
    if missing:
        raise ValueError(f"reward_prompt.txt has no rubric line for score(s) {missing}")
    return found


def default_model_spec(model: str | None = None) -> str:
    """The model to serve: the argument, else ``$ROBOREWARD_MODEL``, else the released 4B model, or the tiny
    offline model when ``HF_HUB_OFFLINE`` is set (so the app starts with no network)."""
    if model:
        return model
    if os.environ.get(ENV_MODEL):
        return os.environ[ENV_MODEL]
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return OFFLINE_MODEL if offline else DEFAULT_MODEL


#: Leading bytes of still-image formats (refused even when named .mp4).
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def check_video(path: str | os.PathLike | None, limits: Limits) -> VideoInfo:
    """Refuse anything that is not a readable video within the limits; return its probe."""
    if path is None or not str(path):
        raise DemoInputError("Upload a video first (mp4, webm or mov).")
    p = Path(path)
    name = p.name
    if not p.is_file():
        raise DemoInputError(f"{name}: the uploaded file is missing on the server; upload it again.")
    mime = mimetypes.guess_type(name)[0]
    if mime is not None and not mime.startswith("video/"):
        raise DemoInputError(f"{name}: not a video file ({mime}); upload an mp4, webm or mov.")
    size = p.stat().st_size
    if size == 0:
        raise DemoInputError(f"{name}: the file is empty.")
    if size > limits.max_file_bytes:
        raise DemoInputError(f"{name}: {size / 2**20:.1f} MB is over the {limits.max_file_mb:g} MB limit.")
    with open(p, "rb") as fh:
        head = fh.read(16)
    image = next((kind for magic, kind in _IMAGE_MAGIC if head.startswith(magic)), None)
    if image is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        image = "WebP"
    if image:  # FFmpeg would open a still image as a one-frame "video": judge the content, not the name
        raise DemoInputError(f"{name}: not a video file (the content is a {image} image); upload an mp4, webm or mov.")
    try:
        info = probe(p)
    except VideoDecodeError as exc:
        raise DemoInputError(unreadable(p, exc)) from None
    if info.duration > limits.max_duration_s:
        raise DemoInputError(
            f"{name}: the video lasts {info.duration:.1f} s, over the {limits.max_duration_s:g} s limit."
        )
    return info


def check_instruction(instruction: str | None, limits: Limits) -> str:
    """The instruction with its whitespace collapsed; refuse an empty or overly long one."""
    text = " ".join(str(instruction or "").split())
    if not text:
        raise DemoInputError("Type the instruction the robot was given (e.g. 'open the drawer').")
    if len(text) > limits.max_instruction_chars:
        raise DemoInputError(
            f"The instruction has {len(text)} characters, over the {limits.max_instruction_chars} limit."
        )
    return text


def unreadable(path: Path, exc: VideoDecodeError) -> str:
    """The message for a video that does not decode, naming the file without the server's temp folder."""
    return f"{path.name}: not a readable video ({_short(str(exc).replace(str(path), path.name))})."


def _short(what: object, n: int = 200) -> str:
    text = str(what)
    return text if len(text) <= n else text[: n - 3] + "..."


def analyse(
    scorer: Scorer,
    video: str | os.PathLike | None,
    instruction: str | None,
    *,
    limits: Limits = Limits(),
    curve_points: int = 8,
    strip_frames: int = 8,
) -> DemoResult:
    """Validate the inputs, score the video and sample the frame strip (the frames the scorer sees when it
    exposes ``sample``, else ``strip_frames`` uniform ones).

    With ``curve_points`` > 1 the dense progress curve (:func:`roboreward.scoring.progress_curve`) is scored
    too and the headline score is its last point, the whole video, so nothing is scored twice (the curve
    decodes a bounded uniform proxy of the video, see :func:`roboreward.scoring.progress_curve`). Raises
    :class:`DemoInputError` on bad input.
    """
    info = check_video(video, limits)
    text = check_instruction(instruction, limits)
    path = str(video)
    want_curve = curve_points > 1
    start = time.perf_counter()
    try:
        sample = getattr(scorer, "sample", None)
        sampled = sample(path) if callable(sample) else read_video(path, num_frames=min(strip_frames, info.num_frames))
        if want_curve:
            curve = progress_curve(scorer, path, text, num_points=int(curve_points))
            output = curve.outputs[-1]
        elif callable(sample) and callable(getattr(scorer, "score_sampled", None)):
            output = scorer.score_sampled([sampled], [text])[0]  # the strip's frames: decode once
        else:
            output = scorer.score(path, text)
    except VideoDecodeError as exc:  # the container probed fine but its frames do not decode
        raise DemoInputError(unreadable(Path(path), exc)) from None
    result = DemoResult(
        output=output,
        info=info,
        frames=sampled.frames,
        frame_times=[round(i / info.fps, 2) for i in sampled.indices],
    )
    if want_curve:
        result.curve_times = [float(t) for t in curve.times]
        result.curve_progress = [float(p) for p in curve.progress]
        result.voc = float(curve.voc)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def headline(result: DemoResult, model_name: str) -> str:
    """The markdown above the charts: score, rubric sentence, expected progress."""
    out = result.output
    lines = [
        f"## {out.score} / 5 — {SCORE_NAMES[out.score]}",
        f"*{rubric_sentences()[out.score]}*",
        "",
    ]
    if out.expected is not None:
        lines.append(f"**Expected progress:** {100 * out.progress:.0f}% (E[score] = {out.expected:.2f})")
    if out.probs is None:
        lines.append("\nThis scorer answered with text only (no distribution): the bar shows its parsed answer.")
    if result.curve_times:
        lines.append(
            f"\n**Progress curve:** {len(result.curve_times)} prefixes scored, "
            f"value-order correlation (VOC) {result.voc:+.2f}"
        )
    if not out.parsed:
        lines.append(
            f"\n⚠️ The answer could not be parsed (shown as 1; evaluation counts it at the maximum error): "
            f"{_short(repr(out.raw_text))}"
        )
    info = result.info
    lines.append(
        f"\n<sub>model `{model_name}` · video {info.width}x{info.height}, {info.num_frames} frames at "
        f"{info.fps:g} fps ({info.duration:.1f} s) · scored in {result.seconds:.1f} s</sub>"
    )
    return "\n".join(lines)


def distribution_frame(result: DemoResult) -> pd.DataFrame:
    """Rows (score, probability) for the bar chart."""
    import pandas as pd

    return pd.DataFrame({"score": [str(s) for s in SCORES], "probability": [round(p, 4) for p in result.probs]})


def curve_frame(result: DemoResult) -> pd.DataFrame:
    """Rows (time in s, expected progress in %) for the progress curve."""
    import pandas as pd

    return pd.DataFrame(
        {"time_s": result.curve_times, "progress_pct": [round(100 * p, 2) for p in result.curve_progress]}
    )


def spaces_gpu() -> Callable | None:
    """``spaces.GPU`` when the ``spaces`` package (Hugging Face ZeroGPU) is importable, else None.

    On ZeroGPU ``spaces`` must be imported before torch initialises CUDA: :func:`serve` calls this first.
    (A checkout's ``spaces/`` folder imports as an empty namespace package: it has no ``GPU``.)"""
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


def example_rows(root: str | os.PathLike | None, limit: int = 4) -> list[list[str]]:
    """[video path, instruction] pairs from a dataset in the released layout (its first split present)."""
    if not root:
        return []
    from roboreward.dataset_io import available_splits, read_split

    splits = available_splits(root)
    if not splits:
        log.warning("no split with metadata.jsonl under %s: no examples", root)
        return []
    split = "test" if "test" in splits else splits[0]
    return [[str(r.video_path), r.task] for r in read_split(root, split, limit=limit)]


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
    strip_frames: int = 8,
    model_name: str | None = None,
    note: str = "",
) -> gr.Blocks:
    """The ``gr.Blocks`` app scoring uploads with ``scorer``. The API endpoint is ``/score``."""
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
            raise gr.Error(f"Scoring failed: {type(exc).__name__}: {_short(exc)}", title="Scoring failed") from None
        strip = [(f, f"t = {t:.1f} s") for f, t in zip(result.frames, result.frame_times, strict=True)]
        return (
            headline(result, model_name),
            distribution_frame(result),
            curve_frame(result),
            strip,
            result.to_dict(),
        )

    score_fn = gpu_decorator(score)

    with gr.Blocks(title="RoboReward — score a robot video") as demo:
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


def demo_command(
    model: Annotated[
        str | None,
        typer.Option(
            help=f"Hub repo id, local folder, 'tiny' or 'openai:<model>@<url>' (default ${ENV_MODEL}, else "
            f"{DEFAULT_MODEL}; '{OFFLINE_MODEL}' when HF_HUB_OFFLINE=1)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: 7860 or the next free one).")] = None,
    examples: Annotated[
        Path | None, typer.Option(help=f"A dataset in the released layout to take examples from (${ENV_EXAMPLES}).")
    ] = None,
    max_file_mb: Annotated[float, typer.Option(help="Upload size limit.")] = Limits.max_file_mb,
    max_duration_s: Annotated[float, typer.Option(help="Video duration limit.")] = Limits.max_duration_s,
    concurrency: Annotated[int, typer.Option(help="Scoring jobs run at once (the rest queue).")] = 1,
    curve_points: Annotated[int, typer.Option(help="Default number of progress-curve points (0 = off).")] = 8,
) -> None:
    """Serve the Gradio demo: upload a robot video, type the instruction, get the 1-5 reward."""
    serve(
        model,
        examples=examples,
        limits=Limits(max_file_mb=max_file_mb, max_duration_s=max_duration_s),
        host=host,
        port=port,
        concurrency=concurrency,
        curve_points=curve_points,
    )
