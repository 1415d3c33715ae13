"""The relabeling orchestration: :class:`Relabeler` ``(episode, video_path) -> RelabelResult`` runs the stages
of :mod:`roboreward.relabel.stages` in order, and :func:`make_relabeler` builds one on a named backend.

1. **clean** — an LLM rewrites the instruction (grammar, vocabulary; meaning kept);
2. **counterfactuals** (successes, label 5, only) — keep the video, change the instruction so the same
   video earns a lower score (scene summary, ordered failure modes, instructions, yes/no video validation);
3. **paraphrases** — ``paraphrases`` meaning-preserving rewrites of the cleaned instruction and of every
   accepted counterfactual instruction, each keeping the label of what it paraphrases;
4. **check** (optional) — a VLM writes a label-consistency check for every derived row
   (``Example.label_check``, like the release's ``gpt5_mini_check``).

When a stage gives up, the reason goes to ``RelabelResult.skipped`` and everything produced so far is kept.
Every call goes through an on-disk cache (:mod:`roboreward.relabel.cache`), so a re-run or a build resumed
after a kill makes no finished call again.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from roboreward.relabel import stages
from roboreward.relabel.cache import LMCache
from roboreward.relabel.lm import DEFAULT_TEXT_MODEL, DEFAULT_VIDEO_MODEL, LM, CachedLM, TransformersLM
from roboreward.relabel.openai_lm import OpenAIChatLM
from roboreward.relabel.parse import CF_SCORES, one_line
from roboreward.relabel.stages import AskSettings, EpisodeRun
from roboreward.sampling import FrameSampling
from roboreward.types import Episode, Example, RelabelResult
from roboreward.video import SampledVideo, VideoDecodeError

#: Frames the VLM stages see: the package's sampling, with more frames (relabeling reads scenes in detail).
RELABEL_SAMPLING = FrameSampling().replace(max_frames=16)


def default_cache_dir() -> Path:
    """``$ROBOREWARD_CACHE/lm-calls``, or ``~/.cache/roboreward/lm-calls``."""
    return Path(os.environ.get("ROBOREWARD_CACHE", Path.home() / ".cache" / "roboreward")) / "lm-calls"


class Relabeler:
    """Cleans, counterfactually relabels and paraphrases episodes with a text LM and a video LM.

    ``text_lm`` / ``video_lm`` are any :class:`~roboreward.relabel.lm.LM` (``video_lm`` defaults to
    ``text_lm``, which then must see videos). ``cache_dir`` holds the LM-call cache (default
    :func:`default_cache_dir`; ``False`` turns caching off). Frames for the VLM are sampled by ``sampling``
    (default :data:`RELABEL_SAMPLING`) with ``fps`` / ``num_frames`` / ``max_frames`` / ``min_frames``
    applied on top. ``prefill`` starts each answer with the stage's JSON opening
    (:data:`~roboreward.relabel.parse.PREFILLS`; local models, and servers that continue a final message).
    """

    def __init__(
        self,
        text_lm: LM,
        video_lm: LM | None = None,
        *,
        paraphrases: int = 0,
        counterfactuals: bool = True,
        clean: bool = True,
        label_check: bool = False,
        drop_inconsistent: bool = False,
        cache_dir: Path | str | bool | None = None,
        max_retries: int = 3,
        sampling: FrameSampling | None = None,
        fps: float | None = None,
        num_frames: int | None = None,
        max_frames: int | None = None,
        min_frames: int | None = None,
        max_tokens: int = 768,
        retry_temperature: float = 0.7,
        prefill: bool = True,
        scores: Sequence[int] = CF_SCORES,
    ) -> None:
        if paraphrases < 0:
            raise ValueError(f"paraphrases must be >= 0, got {paraphrases}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if sorted(set(scores)) != list(scores) or not set(scores) <= {1, 2, 3, 4}:
            raise ValueError(f"scores must be increasing values in 1..4, got {list(scores)}")
        video_lm = video_lm or text_lm
        if (counterfactuals or label_check) and not video_lm.supports_video:
            raise ValueError(f"counterfactuals and label checks need a video model; {video_lm.name} takes no video")
        if cache_dir is False:
            self.cache = None
        else:
            self.cache = LMCache(default_cache_dir() if cache_dir in (None, True) else Path(cache_dir))  # type: ignore[arg-type]
        self.text = CachedLM(text_lm, self.cache)
        self.video = CachedLM(video_lm, self.cache)
        self.paraphrases = int(paraphrases)
        self.counterfactuals = counterfactuals
        self.clean = clean
        self.label_check = label_check
        self.drop_inconsistent = drop_inconsistent
        self.sampling = (sampling or RELABEL_SAMPLING).replace(
            fps=fps, num_frames=num_frames, max_frames=max_frames, min_frames=min_frames
        )
        self.settings = AskSettings(
            max_retries=int(max_retries), max_tokens=max_tokens, retry_temperature=retry_temperature, prefill=prefill
        )
        self.scores = tuple(scores)

    def __call__(self, episode: Episode, video_path: Path | str) -> RelabelResult:
        """Relabel one episode whose video is at ``video_path``; never raises for bad LM output."""
        run = EpisodeRun(episode, self.settings)
        if not one_line(episode.instruction):
            run.skip("relabel", "the episode has an empty instruction; nothing to relabel")
            return RelabelResult(instruction="", skipped=run.skipped, calls=0)
        instruction = one_line(episode.instruction)
        if self.clean:
            instruction = (
                _guard(run, "clean", lambda: stages.clean_instruction(run, self.text, instruction)) or instruction
            )
        wants_cf = self.counterfactuals and episode.label == 5
        video = self._read_video(run, Path(video_path)) if wants_cf or self.label_check else None

        examples: list[Example] = []
        if wants_cf and video is not None:
            cf = _guard(
                run,
                "counterfactuals",
                lambda: stages.counterfactual_examples(run, self.text, self.video, instruction, video, self.scores),
            )
            examples += cf or []
        if self.paraphrases:
            sources = list(examples)
            if episode.label is None:
                run.skip("paraphrase", "the episode has no label; its own instruction is not paraphrased")
            else:
                sources.insert(0, stages.derived_row(episode, instruction, int(episode.label), "original"))
            examples += (
                _guard(run, "paraphrase", lambda: stages.paraphrase_examples(run, self.text, sources, self.paraphrases))
                or []
            )
        if self.label_check and video is not None and examples:
            checked = _guard(
                run,
                "check",
                lambda: stages.check_examples(
                    run, self.video, examples, video, drop_inconsistent=self.drop_inconsistent
                ),
            )
            if checked is not None:
                examples = checked
        return RelabelResult(instruction=instruction, examples=examples, skipped=run.skipped, calls=run.calls)

    def _read_video(self, run: EpisodeRun, video_path: Path) -> SampledVideo | None:
        try:
            return self.sampling.read(video_path)
        except (VideoDecodeError, OSError) as exc:
            run.skip("video", f"{video_path}: {exc}; no counterfactuals or checks for this episode")
            return None

    def close(self) -> None:
        self.text.lm.close()
        if self.video.lm is not self.text.lm:
            self.video.lm.close()


def _guard(run: EpisodeRun, stage: str, fn: Callable[[], Any]) -> Any:
    """Run a stage; an unexpected error skips the stage (with its reason) instead of ending the build."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a long build keeps going and reports what it skipped
        where = traceback.extract_tb(exc.__traceback__)[-1]
        run.skip(stage, f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})")
        return None


def make_relabeler(
    backend: str | LM = "transformers",
    *,
    text_model: str | None = None,
    video_model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    paraphrases: int = 0,
    counterfactuals: bool = True,
    clean: bool = True,
    cache_dir: Path | None = None,
    max_retries: int = 3,
    concurrency: int = 4,
    label_check: bool = False,
    timeout: float = 120.0,
    video_mode: str = "frames",
    **options: Any,
) -> Relabeler:
    """A :class:`Relabeler` on the ``"transformers"`` or ``"openai"`` backend (or an :class:`LM` object).

    transformers: ``text_model`` (default Qwen3-4B-Instruct-2507) and ``video_model`` (default
    Qwen2.5-VL-7B-Instruct), repo ids or local folders, loaded on first use. openai: one chat server at
    ``base_url`` (or ``$OPENAI_BASE_URL``; key ``api_key`` or ``$OPENAI_API_KEY``); ``video_model`` defaults to
    ``text_model``, and both to the server's first model; ``video_mode`` is ``"frames"`` or ``"video_url"``.
    Further ``options`` go to :class:`Relabeler`.
    """
    common = dict(
        paraphrases=paraphrases,
        counterfactuals=counterfactuals,
        clean=clean,
        cache_dir=cache_dir,
        max_retries=max_retries,
        label_check=label_check,
        **options,
    )
    if isinstance(backend, LM):
        return Relabeler(backend, None, **common)
    if backend == "transformers":
        text = TransformersLM(text_model or DEFAULT_TEXT_MODEL)
        needs_video = counterfactuals or label_check
        video = TransformersLM(video_model or DEFAULT_VIDEO_MODEL) if needs_video else None
        return Relabeler(text, video, **common)
    if backend == "openai":
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise ValueError("the openai backend needs base_url (or $OPENAI_BASE_URL), e.g. http://localhost:8000/v1")
        http: dict[str, Any] = dict(
            base_url=url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            concurrency=concurrency,
            video_mode=video_mode,
        )
        text_name = text_model or video_model
        video_name = video_model or text_model
        text_lm = OpenAIChatLM(text_name, **http)
        video_lm = text_lm if video_name == text_name else OpenAIChatLM(video_name, **http)
        return Relabeler(text_lm, video_lm, **common)
    raise ValueError(f"unknown LM backend {backend!r}; use 'transformers', 'openai' or an LM object")
