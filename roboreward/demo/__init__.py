"""The Gradio demo: upload a robot video, type the instruction, press Score.

:func:`build_demo` turns any :class:`~roboreward.types.Scorer` into a ``gr.Blocks`` app showing the 1-5
score with its rubric sentence (from the released model card's prompt), the distribution over 1..5, the
expected progress, the sampled frames and a dense progress curve (scores of growing prefixes of the video).
:func:`launch` serves it with a queue, an upload size limit and no share link; ``roboreward demo``
(:mod:`roboreward.cli`) and ``spaces/demo/app.py`` (the Hugging Face Space) call :func:`serve`.

* :mod:`~roboreward.demo.checks` — :class:`Limits` and the checks of an upload and an instruction;
* :mod:`~roboreward.demo.analysis` — :func:`analyse`: score, curve and frame strip of one upload;
* :mod:`~roboreward.demo.app` — :func:`build_demo`, :func:`launch` (the Gradio page);
* :mod:`~roboreward.demo.serve` — :func:`serve`, :func:`serve_from_env`: model choice, examples, settings.

Bad input (no video, a non-video file, a corrupt or empty video, one over the size or duration limit, an
empty instruction) raises ``gr.Error`` with a message naming the problem; the app keeps serving.
Gradio, torch and the model are imported lazily, so importing this package is cheap.
"""

from __future__ import annotations

from roboreward.demo.analysis import DemoResult, analyse, curve_frame, distribution_frame, headline, rubric_sentences
from roboreward.demo.app import build_demo, gpu_decorator, launch, spaces_gpu, theme
from roboreward.demo.checks import DemoInputError, Limits, check_instruction, check_video, unreadable
from roboreward.demo.serve import (
    ENV_EXAMPLES,
    ENV_MODEL,
    OFFLINE_MODEL,
    default_model_spec,
    example_rows,
    find_examples,
    serve,
    serve_from_env,
    spread_over_episodes,
)
from roboreward.scoring import DEFAULT_MODEL

__all__ = [
    "DEFAULT_MODEL",
    "ENV_EXAMPLES",
    "ENV_MODEL",
    "OFFLINE_MODEL",
    "DemoInputError",
    "DemoResult",
    "Limits",
    "analyse",
    "build_demo",
    "check_instruction",
    "check_video",
    "curve_frame",
    "default_model_spec",
    "distribution_frame",
    "example_rows",
    "find_examples",
    "gpu_decorator",
    "headline",
    "launch",
    "rubric_sentences",
    "serve",
    "serve_from_env",
    "spaces_gpu",
    "spread_over_episodes",
    "theme",
    "unreadable",
]
