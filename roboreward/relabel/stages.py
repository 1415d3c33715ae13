"""The relabeling stages, one function each, and the retried question they all ask through.

Every stage asks its LM through :meth:`EpisodeRun.ask`: one batch per round, each answer parsed
(:mod:`roboreward.relabel.parse`); a :class:`~roboreward.relabel.parse.BadAnswer` is asked again with the
reason quoted back, at most ``max_retries`` times; a failed call (timeouts/5xx after the backend's own
retries) is not. A stage that gives up records why with :meth:`EpisodeRun.skip` and returns what it has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roboreward.relabel.lm import CachedLM, LMRequest
from roboreward.relabel.parse import (
    PREFILLS,
    BadAnswer,
    norm,
    one_line,
    parse_check,
    parse_clean,
    parse_instructions,
    parse_modes,
    parse_paraphrases,
    parse_scene,
    parse_validation,
    render,
)
from roboreward.rubric import RUBRIC
from roboreward.types import Episode, Example
from roboreward.video import SampledVideo


@dataclass(frozen=True)
class AskSettings:
    """How every stage asks: answer length, bad-answer retries (sampled at ``retry_temperature``), prefills."""

    max_retries: int = 3
    max_tokens: int = 768
    retry_temperature: float = 0.7
    prefill: bool = True


@dataclass
class Ask:
    """One item of a batched, retried question: after :meth:`EpisodeRun.ask`, ``value`` (parsed) or ``error``."""

    prompt: str
    parse: Callable[[str | None], Any]
    video: SampledVideo | None = None
    value: Any = None
    raw: str | None = None
    error: str | None = None


@dataclass
class EpisodeRun:
    """Per-episode state: counts calls (cache hits excluded) and collects skip reasons."""

    episode: Episode
    settings: AskSettings = field(default_factory=AskSettings)
    calls: int = 0
    skipped: list[str] = field(default_factory=list)

    def skip(self, stage: str, reason: str) -> None:
        self.skipped.append(f"episode {self.episode.id}: {stage}: {reason}")

    def _request(self, item: Ask, stage: str, attempt: int, feedback: str | None) -> LMRequest:
        prompt = item.prompt if feedback is None else item.prompt + "\n" + render("relabel_retry.txt", reason=feedback)
        s = self.settings
        return LMRequest(
            prompt=prompt,
            video=item.video,
            max_tokens=s.max_tokens,
            temperature=0.0 if attempt == 0 else s.retry_temperature,
            seed=None if attempt == 0 else attempt,
            prefill=PREFILLS.get(stage, "") if s.prefill else "",
            stage=stage,
        )

    def ask(self, lm: CachedLM, stage: str, items: list[Ask]) -> list[Ask]:
        """Ask every item (one batch per round), parse, and retry bad answers with the reason quoted back."""
        pending = list(range(len(items)))
        feedback: dict[int, str] = {}
        for attempt in range(self.settings.max_retries + 1):
            if not pending:
                break
            results = lm.generate_batch([self._request(items[i], stage, attempt, feedback.get(i)) for i in pending])
            self.calls += sum(not r.cached for r in results)
            still = []
            for i, res in zip(pending, results, strict=True):
                item = items[i]
                item.raw = res.text
                if not res.ok:  # the backend already retried transport errors: give up on this item
                    item.error = f"LM call failed: {res.error}"
                    continue
                try:
                    item.value, item.error = item.parse(res.text), None
                except BadAnswer as exc:
                    item.error = f"{exc} (after {attempt + 1} attempt{'s' if attempt else ''})"
                    feedback[i] = str(exc)
                    still.append(i)
            pending = still
        return items

    def ask_one(self, lm: CachedLM, stage: str, item: Ask) -> Ask:
        return self.ask(lm, stage, [item])[0]


def derived_row(episode: Episode, task: str, reward: int, kind: str, **fields: Any) -> Example:
    """A row of ``episode`` with a new ``task`` / ``reward`` (the builder fills in ``file_name``)."""
    return Example(
        file_name="",
        task=task,
        reward=reward,
        episode_id=episode.id,
        source=episode.source,
        embodiment=episode.embodiment,
        kind=kind,
        original_instruction=episode.instruction,
        **fields,
    )


# -- 1. clean ------------------------------------------------------------------------------------------------


def clean_instruction(run: EpisodeRun, lm: CachedLM, instruction: str) -> str:
    """The rewritten instruction (the original, whitespace-normalised, when the stage fails)."""
    original = one_line(instruction)
    item = run.ask_one(lm, "clean", Ask(render("relabel_clean.txt", instruction=original), parse_clean))
    if item.error:
        run.skip("clean", f"kept the original instruction: {item.error}")
        return original
    return item.value


# -- 2. counterfactuals --------------------------------------------------------------------------------------


def scene_summary(run: EpisodeRun, lm: CachedLM, instruction: str, video: SampledVideo) -> str | None:
    """(a) The VLM's scene summary as prompt text (objects and final states); None when it failed."""
    item = run.ask_one(lm, "scene", Ask(render("relabel_scene.txt", instruction=instruction), parse_scene, video))
    if item.error:
        run.skip("counterfactuals", f"scene summary failed: {item.error}")
        return None
    return item.value


def failure_modes(
    run: EpisodeRun, lm: CachedLM, instruction: str, scene: str, scores: Sequence[int]
) -> list[dict[str, Any]] | None:
    """(b) One failure mode per score in ``scores``, strictly ordered; None when the stage failed."""
    prompt = render("relabel_failure_modes.txt", instruction=instruction, scene=scene)
    item = run.ask_one(lm, "failure_modes", Ask(prompt, lambda t: parse_modes(t, scores)))
    if item.error:
        run.skip("counterfactuals", f"failure modes failed: {item.error}")
        return None
    return item.value


def write_instructions(
    run: EpisodeRun,
    lm: CachedLM,
    instruction: str,
    scene: str,
    todo: list[dict[str, Any]],
    rejected: dict[int, list[str]],
    taken: set[str],
) -> dict[int, str] | None:
    """(c) score -> new instruction for each mode in ``todo``, told which earlier ones the video check
    rejected; None when the stage failed."""
    feedback = ""
    lines = [f"- score {m['score']}: {r}" for m in todo for r in rejected.get(m["score"], [])]
    if lines:
        feedback = "\n\nThese earlier commands were rejected by the video check; write different ones:\n" + "\n".join(
            lines
        )
    prompt = render(
        "relabel_instructions.txt",
        instruction=instruction,
        scene=scene,
        modes="\n".join(f"- score {m['score']}: {m['description']}" for m in todo),
        feedback=feedback,
    )
    item = run.ask_one(lm, "instructions", Ask(prompt, lambda t: parse_instructions(t, todo, taken)))
    if item.error:
        run.skip("counterfactuals", f"instructions for scores {[m['score'] for m in todo]}: {item.error}")
        return None
    return item.value


def validate_instructions(
    run: EpisodeRun, lm: CachedLM, new: dict[int, str], video: SampledVideo
) -> dict[int, tuple[str, str]]:
    """(d) score -> the VLM's ``(yes|no, reason)`` for each new instruction with the video (failed checks are
    skipped and left out)."""
    asks = [
        Ask(render("relabel_validate.txt", task=task, score=s, level=RUBRIC[s]), parse_validation, video)
        for s, task in new.items()
    ]
    verdicts = {}
    for s, chk in zip(new, run.ask(lm, "validate", asks), strict=True):
        if chk.error:
            run.skip("counterfactuals", f"score {s}: validation failed: {chk.error}")
        else:
            verdicts[s] = chk.value
    return verdicts


def counterfactual_examples(
    run: EpisodeRun,
    text_lm: CachedLM,
    video_lm: CachedLM,
    instruction: str,
    video: SampledVideo,
    scores: Sequence[int],
) -> list[Example]:
    """Validated counterfactual rows (one per score in ``scores``) for a successful episode: (a) scene, (b)
    failure modes, then rounds of (c) instructions and (d) validation, a "no" sending its mode to the next
    round, at most ``max_retries`` rounds after the first."""
    episode = run.episode
    scene = scene_summary(run, video_lm, instruction, video)
    modes = None if scene is None else failure_modes(run, text_lm, instruction, scene, scores)
    if scene is None or modes is None:
        return []
    taken = {norm(instruction), norm(episode.instruction)}
    accepted: dict[int, tuple[str, str]] = {}  # score -> (instruction, validator answer)
    rejected: dict[int, list[str]] = {}  # score -> '"instruction" (reason)' lines of earlier rounds
    todo = list(modes)
    for _round in range(run.settings.max_retries + 1):
        new = write_instructions(run, text_lm, instruction, scene, todo, rejected, taken) if todo else None
        if new is None:
            break
        verdicts = validate_instructions(run, video_lm, {m["score"]: new[m["score"]] for m in todo}, video)
        for s, (answer, reason) in verdicts.items():
            if answer == "yes":
                accepted[s] = (new[s], f"yes: {reason}" if reason else "yes")
                taken.add(norm(new[s]))
            else:
                rejected.setdefault(s, []).append(f'"{new[s]}" ({reason or "no reason given"})')
        todo = [m for m in todo if verdicts.get(m["score"], ("yes",))[0] != "yes"]
    for m in todo:
        s = m["score"]
        if s in rejected and s not in accepted:
            run.skip(
                "counterfactuals",
                f"score {s}: the validator said no {len(rejected[s])} time(s); last: {rejected[s][-1]}",
            )
    desc = {m["score"]: m["description"] for m in modes}
    return [
        derived_row(episode, text, s, "counterfactual", failure_mode=desc[s], validator_answer=answer)
        for s, (text, answer) in sorted(accepted.items())
    ]


# -- 3. paraphrases ------------------------------------------------------------------------------------------


def paraphrase_examples(run: EpisodeRun, lm: CachedLM, sources: list[Example], n: int) -> list[Example]:
    """``n`` paraphrases of each source row, each keeping the label (and provenance) of its source."""
    if n <= 0 or not sources:
        return []
    asks = [
        Ask(render("relabel_paraphrase.txt", n=n, instruction=s.task), lambda t, s=s: parse_paraphrases(t, s.task, n))
        for s in sources
    ]
    rows = []
    for src, item in zip(sources, run.ask(lm, "paraphrase", asks), strict=True):
        if item.error:
            run.skip("paraphrase", f'"{src.task}" (reward {src.reward}): {item.error}')
            continue
        rows += [
            derived_row(
                run.episode,
                p,
                src.reward,
                "paraphrase",
                failure_mode=src.failure_mode,
                validator_answer=src.validator_answer,
            )
            for p in item.value
        ]
    return rows


# -- 4. label check ------------------------------------------------------------------------------------------


def check_examples(
    run: EpisodeRun, lm: CachedLM, rows: list[Example], video: SampledVideo, *, drop_inconsistent: bool = False
) -> list[Example]:
    """A written label-consistency check per row (``label_check``); inconsistent rows dropped when asked."""
    asks = [
        Ask(render("relabel_check.txt", task=r.task, score=r.reward, level=RUBRIC[r.reward]), parse_check, video)
        for r in rows
    ]
    kept = []
    for row, item in zip(rows, run.ask(lm, "check", asks), strict=True):
        if item.error:
            run.skip("check", f'"{row.task}": {item.error} (row kept without a check)')
            kept.append(row)
            continue
        consistent, text = item.value
        row.label_check = f"{'consistent' if consistent else 'inconsistent'}: {text}"
        if consistent or not drop_inconsistent:
            kept.append(row)
        else:
            run.skip("check", f'dropped "{row.task}" (reward {row.reward}): {row.label_check}')
    return kept
