"""Instruction rewriting, counterfactual relabeling ("inverse HER") and paraphrase augmentation.

For one episode (:class:`Relabeler` ``(episode, video_path) -> RelabelResult``):

1. **clean** — an LLM rewrites the instruction (grammar, vocabulary; meaning kept);
2. **counterfactuals** (successes, label 5, only) — keep the video, change the instruction so the same
   video earns a lower score: (a) a VLM summarises the scene, its objects and their final states; (b) an LLM
   proposes one failure mode per score 1..4, strictly ordered 1 < 2 < 3 < 4 < 5, about visible objects and
   relations; (c) the LLM writes one instruction per mode; (d) the VLM validates each (instruction, video)
   pair with yes/no; a "no" sends that mode back to (c), at most ``max_retries`` rounds;
3. **paraphrases** — ``paraphrases`` meaning-preserving rewrites of the cleaned instruction and of every
   accepted counterfactual instruction, each keeping the label of what it paraphrases;
4. **check** (optional) — a VLM writes a label-consistency check for every derived row
   (``Example.label_check``, like the release's ``gpt5_mini_check``).

Prompts are files in :mod:`roboreward.prompts` (``relabel_*.txt``) that quote the rubric
(:data:`roboreward.rubric.RUBRIC`); every answer is parsed as JSON and validated against
``relabel_schemas.json`` plus stage rules (ordering, distinctness). A bad answer (empty, unparseable,
off-schema, non-monotone) is retried with the reason quoted back to the model, at most ``max_retries`` times;
a failed call (timeouts/5xx after the backend's own retries) is not. When a stage gives up, the reason goes to
``RelabelResult.skipped`` and everything produced so far is kept. Every call goes through an on-disk cache
(:mod:`roboreward.cache`), so a re-run or a build resumed after a kill makes no finished call again.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from roboreward.cache import LMCache
from roboreward.lm import (
    DEFAULT_TEXT_MODEL,
    DEFAULT_VIDEO_MODEL,
    LM,
    CachedLM,
    LMRequest,
    LMResult,
    OpenAIChatLM,
    TransformersLM,
)
from roboreward.rubric import RUBRIC, SCORE_NAMES, load_prompt
from roboreward.types import Episode, Example, RelabelResult
from roboreward.video import SampledVideo, VideoDecodeError, read_video

#: Scores the counterfactual failure modes take (the success itself is 5).
CF_SCORES: tuple[int, ...] = (1, 2, 3, 4)

#: How each stage's answer starts when ``prefill`` is on (holds small local models to the JSON format).
PREFILLS: dict[str, str] = {
    "clean": '{"instruction": "',
    "scene": '{"summary": "',
    "failure_modes": '{"modes": [',
    "instructions": '{"instructions": [',
    "validate": '{"answer": "',
    "paraphrase": '{"paraphrases": ["',
    "check": '{"consistent": ',
}


class BadAnswer(ValueError):
    """An LM answer that cannot be used (the message is quoted back to the model on retry)."""


# ----------------------------------------------------------------------------------------------------------
# prompts and parsing
# ----------------------------------------------------------------------------------------------------------


def rubric_text() -> str:
    """The 1-5 rubric as prompt lines: ``5 (Perfect Completion): the final state satisfies ...``."""
    return "\n".join(f"{s} ({SCORE_NAMES[s]}): {RUBRIC[s]}" for s in sorted(RUBRIC))


def render(name: str, **values: Any) -> str:
    """Fill ``roboreward/prompts/<name>`` (``$name`` placeholders; ``$rubric`` is filled automatically)."""
    values.setdefault("rubric", rubric_text())
    return Template(load_prompt(name)).substitute({k: str(v) for k, v in values.items()}).strip()


@cache
def schemas() -> dict[str, Any]:
    """The JSON schemas of every stage's answer (``prompts/relabel_schemas.json``)."""
    return json.loads(load_prompt("relabel_schemas.json"))


_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def extract_json(text: str | None) -> Any:
    """The first JSON object in an LM answer (tolerates code fences, prose around it, ``<think>`` blocks)."""
    if text is None or not text.strip():
        raise BadAnswer("the answer was empty")
    body = _THINK_RE.sub("", text)
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", body):
        try:
            obj, _ = decoder.raw_decode(body, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    raise BadAnswer("the answer contained no valid JSON object")


def parse_json(text: str | None, stage: str) -> dict[str, Any]:
    """Extract the JSON object of ``text`` and validate it against the schema of ``stage``."""
    import jsonschema

    obj = extract_json(text)
    try:
        jsonschema.validate(obj, schemas()[stage])
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise BadAnswer(f"the JSON does not match the required format at {where}: {exc.message}") from None
    return obj


def norm(text: str) -> str:
    """Lowercase, alphanumerics only: for comparing instructions."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_modes(text: str | None, scores: Sequence[int] = CF_SCORES) -> list[dict[str, Any]]:
    """Failure modes with scores exactly ``scores`` in strictly increasing order, distinct descriptions."""
    modes = parse_json(text, "failure_modes")["modes"]
    got = [m["score"] for m in modes]
    if any(b <= a for a, b in zip(got, got[1:], strict=False)):
        raise BadAnswer(f"the scores {got} are not strictly increasing (the ordering must be 1 < 2 < 3 < 4 < 5)")
    if got != list(scores):
        raise BadAnswer(f"the scores are {got}; give exactly one failure mode for each of {list(scores)}")
    descs = [norm(m["description"]) for m in modes]
    if any(not d for d in descs) or len(set(descs)) != len(descs):
        raise BadAnswer("the failure modes must be distinct, non-empty descriptions")
    return [{"score": m["score"], "description": one_line(m["description"])} for m in modes]


def parse_validation(text: str | None) -> tuple[str, str]:
    """``(answer, reason)`` with answer ``yes``/``no``: JSON per the schema, or plain text starting yes/no."""
    try:
        obj = parse_json(text, "validate")
        return obj["answer"], one_line(obj.get("reason", ""))
    except BadAnswer as exc:
        m = re.match(r"^\W*(yes|no)\b[\W_]*(.*)$", (text or "").strip(), re.IGNORECASE | re.DOTALL)
        if m:
            return m.group(1).lower(), one_line(m.group(2))
        raise exc


# ----------------------------------------------------------------------------------------------------------
# the pipeline
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Ask:
    """One item of a batched, retried JSON question."""

    prompt: str
    parse: Callable[[str | None], Any]
    video: SampledVideo | None = None
    value: Any = None
    raw: str | None = None
    error: str | None = None


@dataclass
class _Run:
    """Per-episode state: counts calls (cache hits excluded) and collects skip reasons."""

    episode: Episode
    calls: int = 0
    skipped: list[str] = field(default_factory=list)

    def skip(self, stage: str, reason: str) -> None:
        self.skipped.append(f"episode {self.episode.id}: {stage}: {reason}")


class Relabeler:
    """Cleans, counterfactually relabels and paraphrases episodes with a text LM and a video LM.

    ``text_lm`` / ``video_lm`` are any :class:`~roboreward.lm.LM` (``video_lm`` defaults to ``text_lm``, which
    then must see videos). ``cache_dir`` holds the LM-call cache (default ``$ROBOREWARD_CACHE/lm-calls`` or
    ``~/.cache/roboreward/lm-calls``; ``False`` turns caching off). Frames for the VLM are sampled at ``fps``
    (between ``min_frames`` and ``max_frames``) or exactly ``num_frames``. ``prefill`` starts each answer
    with the stage's JSON opening (:data:`PREFILLS`; local models, and servers that continue a final message).
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
        fps: float | None = 2.0,
        num_frames: int | None = None,
        max_frames: int = 16,
        min_frames: int = 4,
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
            lm_cache = None
        else:
            if cache_dir in (None, True):
                root = Path(os.environ.get("ROBOREWARD_CACHE", Path.home() / ".cache" / "roboreward"))
                cache_dir = root / "lm-calls"
            lm_cache = LMCache(Path(cache_dir))  # type: ignore[arg-type]
        self.cache = lm_cache
        self.text = CachedLM(text_lm, lm_cache)
        self.video = CachedLM(video_lm, lm_cache)
        self.paraphrases = int(paraphrases)
        self.counterfactuals = counterfactuals
        self.clean = clean
        self.label_check = label_check
        self.drop_inconsistent = drop_inconsistent
        self.max_retries = int(max_retries)
        self.fps, self.num_frames = (None if num_frames else fps), num_frames
        self.max_frames, self.min_frames = max_frames, min_frames
        self.max_tokens = max_tokens
        self.retry_temperature = retry_temperature
        self.prefill = prefill
        self.scores = tuple(scores)

    # -- LM plumbing ---------------------------------------------------------------------------------------

    def _ask(self, run: _Run, lm: CachedLM, stage: str, items: list[_Ask]) -> list[_Ask]:
        """Ask every item (in one batch per round), parse, and retry bad answers with the reason quoted back.

        After the call, each item has ``value`` (parsed) or ``error`` (why it was given up on).
        """
        pending = list(range(len(items)))
        feedback: dict[int, str] = {}
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            requests = []
            for i in pending:
                prompt = items[i].prompt
                if i in feedback:
                    prompt = prompt + "\n" + render("relabel_retry.txt", reason=feedback[i])
                requests.append(
                    LMRequest(
                        prompt=prompt,
                        video=items[i].video,
                        max_tokens=self.max_tokens,
                        temperature=0.0 if attempt == 0 else self.retry_temperature,
                        seed=None if attempt == 0 else attempt,
                        prefill=PREFILLS.get(stage, "") if self.prefill else "",
                        stage=stage,
                    )
                )
            results: list[LMResult] = lm.generate_batch(requests)
            run.calls += sum(not r.cached for r in results)
            still = []
            for i, res in zip(pending, results, strict=True):
                item = items[i]
                item.raw = res.text
                if not res.ok:  # the backend already retried transport errors: give up on this item
                    item.error = f"LM call failed: {res.error}"
                    continue
                try:
                    item.value = item.parse(res.text)
                    item.error = None
                except BadAnswer as exc:
                    item.error = f"{exc} (after {attempt + 1} attempt{'s' if attempt else ''})"
                    feedback[i] = str(exc)
                    still.append(i)
            pending = still
        return items

    # -- stages --------------------------------------------------------------------------------------------

    def clean_instruction(self, run: _Run, instruction: str) -> str:
        """Stage 1: the rewritten instruction (the original, whitespace-normalised, when it fails)."""
        original = one_line(instruction)
        if not self.clean:
            return original

        def parse(text: str | None) -> str:
            out = one_line(parse_json(text, "clean")["instruction"])
            if not out:
                raise BadAnswer("the rewritten instruction is empty")
            return out

        (item,) = self._ask(run, self.text, "clean", [_Ask(render("relabel_clean.txt", instruction=original), parse)])
        if item.error:
            run.skip("clean", f"kept the original instruction: {item.error}")
            return original
        return item.value

    def _read_video(self, video_path: Path) -> SampledVideo:
        return read_video(
            video_path,
            fps=self.fps,
            num_frames=self.num_frames,
            max_frames=self.max_frames,
            min_frames=self.min_frames,
        )

    def counterfactual_examples(
        self, run: _Run, episode: Episode, instruction: str, video: SampledVideo
    ) -> list[Example]:
        """Stage 2: validated counterfactual rows (scores 1..4) for a successful episode."""
        (scene_item,) = self._ask(
            run,
            self.video,
            "scene",
            [_Ask(render("relabel_scene.txt", instruction=instruction), lambda t: parse_json(t, "scene"), video)],
        )
        if scene_item.error:
            run.skip("counterfactuals", f"scene summary failed: {scene_item.error}")
            return []
        scene = scene_item.value
        scene_text = (
            one_line(scene["summary"])
            + "\n"
            + "\n".join(f"- {one_line(o['name'])}: {one_line(o.get('final_state', ''))}" for o in scene["objects"])
        )
        (modes_item,) = self._ask(
            run,
            self.text,
            "failure_modes",
            [
                _Ask(
                    render("relabel_failure_modes.txt", instruction=instruction, scene=scene_text),
                    lambda t: parse_modes(t, self.scores),
                )
            ],
        )
        if modes_item.error:
            run.skip("counterfactuals", f"failure modes failed: {modes_item.error}")
            return []
        modes: list[dict[str, Any]] = modes_item.value
        taken = {norm(instruction), norm(episode.instruction)}
        accepted: dict[int, tuple[str, str]] = {}  # score -> (instruction, validator answer)
        rejected: dict[int, list[str]] = {}  # score -> "instruction" (reason) lines of earlier rounds
        todo = list(modes)
        for _round in range(self.max_retries + 1):
            if not todo:
                break
            feedback = ""
            if any(rejected.get(m["score"]) for m in todo):
                lines = [f"- score {s}: {r}" for m in todo for s in [m["score"]] for r in rejected.get(s, [])]
                feedback = (
                    "\n\nThese earlier commands were rejected by the video check; write different ones:\n"
                    + "\n".join(lines)
                )
            item = _Ask(
                render(
                    "relabel_instructions.txt",
                    instruction=instruction,
                    scene=scene_text,
                    modes="\n".join(f"- score {m['score']}: {m['description']}" for m in todo),
                    feedback=feedback,
                ),
                lambda t, todo=todo: self._parse_instructions(t, todo, taken),
            )
            (ins_item,) = self._ask(run, self.text, "instructions", [item])
            if ins_item.error:
                run.skip("counterfactuals", f"instructions for scores {[m['score'] for m in todo]}: {ins_item.error}")
                break
            new: dict[int, str] = ins_item.value
            checks = self._ask(
                run,
                self.video,
                "validate",
                [
                    _Ask(
                        render(
                            "relabel_validate.txt", task=new[m["score"]], score=m["score"], level=RUBRIC[m["score"]]
                        ),
                        parse_validation,
                        video,
                    )
                    for m in todo
                ],
            )
            next_todo = []
            for m, chk in zip(todo, checks, strict=True):
                s = m["score"]
                if chk.error:
                    run.skip("counterfactuals", f"score {s}: validation failed: {chk.error}")
                    continue
                answer, reason = chk.value
                if answer == "yes":
                    accepted[s] = (new[s], f"yes: {reason}" if reason else "yes")
                    taken.add(norm(new[s]))
                else:
                    rejected.setdefault(s, []).append(f'"{new[s]}" ({reason or "no reason given"})')
                    next_todo.append(m)
            todo = next_todo
        for m in todo:
            if m["score"] in rejected and m["score"] not in accepted:
                run.skip(
                    "counterfactuals",
                    f"score {m['score']}: the validator said no {len(rejected[m['score']])} time(s); last: "
                    f"{rejected[m['score']][-1]}",
                )
        desc = {m["score"]: m["description"] for m in modes}
        return [
            Example(
                file_name="",
                task=text,
                reward=s,
                episode_id=episode.id,
                source=episode.source,
                embodiment=episode.embodiment,
                kind="counterfactual",
                original_instruction=episode.instruction,
                failure_mode=desc[s],
                validator_answer=answer,
            )
            for s, (text, answer) in sorted(accepted.items())
        ]

    def _parse_instructions(self, text: str | None, modes: list[dict[str, Any]], taken: set[str]) -> dict[int, str]:
        entries = parse_json(text, "instructions")["instructions"]
        want = [m["score"] for m in modes]
        got = [e["score"] for e in entries]
        if got != want:
            raise BadAnswer(f"the scores are {got}; give exactly one instruction for each of {want}, in that order")
        out: dict[int, str] = {}
        seen = set(taken)
        for e in entries:
            ins = one_line(e["instruction"])
            if not norm(ins):
                raise BadAnswer(f"the instruction for score {e['score']} is empty")
            if norm(ins) in seen:
                raise BadAnswer(f'the instruction "{ins}" repeats the original or another instruction')
            seen.add(norm(ins))
            out[e["score"]] = ins
        return out

    def paraphrase_examples(self, run: _Run, sources: list[Example]) -> list[Example]:
        """Stage 3: ``self.paraphrases`` paraphrases of each source row, keeping its label."""
        n = self.paraphrases
        if n <= 0 or not sources:
            return []

        def parse(text: str | None, source: str) -> list[str]:
            items = [one_line(p) for p in parse_json(text, "paraphrase")["paraphrases"]]
            out, seen = [], {norm(source)}
            for p in items:
                if norm(p) and norm(p) not in seen:
                    seen.add(norm(p))
                    out.append(p)
            if len(out) < n:
                raise BadAnswer(
                    f"got {len(out)} usable paraphrases (distinct, different from the command); {n} are needed"
                )
            return out[:n]

        asks = [
            _Ask(render("relabel_paraphrase.txt", n=n, instruction=s.task), lambda t, s=s: parse(t, s.task))
            for s in sources
        ]
        rows = []
        for src, item in zip(sources, self._ask(run, self.text, "paraphrase", asks), strict=True):
            if item.error:
                run.skip("paraphrase", f'"{src.task}" (reward {src.reward}): {item.error}')
                continue
            for p in item.value:
                rows.append(
                    Example(
                        file_name="",
                        task=p,
                        reward=src.reward,
                        episode_id=src.episode_id,
                        source=src.source,
                        embodiment=src.embodiment,
                        kind="paraphrase",
                        original_instruction=src.original_instruction,
                        failure_mode=src.failure_mode,
                        validator_answer=src.validator_answer,
                    )
                )
        return rows

    def check_examples(self, run: _Run, rows: list[Example], video: SampledVideo) -> list[Example]:
        """Stage 4: a written label-consistency check per row (``label_check``); optionally drop inconsistent."""

        def parse(text: str | None) -> tuple[bool, str]:
            obj = parse_json(text, "check")
            return bool(obj["consistent"]), one_line(obj["check"])

        asks = [
            _Ask(render("relabel_check.txt", task=r.task, score=r.reward, level=RUBRIC[r.reward]), parse, video)
            for r in rows
        ]
        kept = []
        for row, item in zip(rows, self._ask(run, self.video, "check", asks), strict=True):
            if item.error:
                run.skip("check", f'"{row.task}": {item.error} (row kept without a check)')
                kept.append(row)
                continue
            consistent, text = item.value
            row.label_check = f"{'consistent' if consistent else 'inconsistent'}: {text}"
            if consistent or not self.drop_inconsistent:
                kept.append(row)
            else:
                run.skip("check", f'dropped "{row.task}" (reward {row.reward}): {row.label_check}')
        return kept

    # -- the whole episode ---------------------------------------------------------------------------------

    def __call__(self, episode: Episode, video_path: Path | str) -> RelabelResult:
        """Relabel one episode whose video is at ``video_path``; never raises for bad LM output."""
        run = _Run(episode)
        if not one_line(episode.instruction):
            run.skip("relabel", "the episode has an empty instruction; nothing to relabel")
            return RelabelResult(instruction="", skipped=run.skipped, calls=0)
        instruction = self._guard(run, "clean", lambda: self.clean_instruction(run, episode.instruction))
        if instruction is None:
            instruction = one_line(episode.instruction)

        video: SampledVideo | None = None
        needs_video = (self.counterfactuals and episode.label == 5) or self.label_check
        if needs_video:
            try:
                video = self._read_video(Path(video_path))
            except (VideoDecodeError, OSError) as exc:
                run.skip("video", f"{video_path}: {exc}; no counterfactuals or checks for this episode")

        examples: list[Example] = []
        if self.counterfactuals and episode.label == 5 and video is not None:
            examples += (
                self._guard(
                    run, "counterfactuals", lambda: self.counterfactual_examples(run, episode, instruction, video)
                )
                or []
            )

        if self.paraphrases:
            sources = list(examples)
            if episode.label is None:
                run.skip("paraphrase", "the episode has no label; its own instruction is not paraphrased")
            else:
                own = Example(
                    file_name="",
                    task=instruction,
                    reward=int(episode.label),
                    episode_id=episode.id,
                    source=episode.source,
                    embodiment=episode.embodiment,
                    kind="original",
                    original_instruction=episode.instruction,
                )
                sources.insert(0, own)
            examples += self._guard(run, "paraphrase", lambda: self.paraphrase_examples(run, sources)) or []

        if self.label_check and video is not None and examples:
            checked = self._guard(run, "check", lambda: self.check_examples(run, examples, video))
            if checked is not None:
                examples = checked
        return RelabelResult(instruction=instruction, examples=examples, skipped=run.skipped, calls=run.calls)

    @staticmethod
    def _guard(run: _Run, stage: str, fn: Callable[[], Any]) -> Any:
        """Run a stage; an unexpected error skips the stage (with its reason) instead of ending the build."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a long build keeps going and reports what it skipped
            where = traceback.extract_tb(exc.__traceback__)[-1]
            run.skip(stage, f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})")
            return None

    def close(self) -> None:
        self.text.lm.close()
        if self.video.lm is not self.text.lm:
            self.video.lm.close()


# ----------------------------------------------------------------------------------------------------------
# factory used by the dataset builder
# ----------------------------------------------------------------------------------------------------------


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
    ``text_model``, and both to the server's first model. Further ``options`` go to :class:`Relabeler`.
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
        http = dict(
            base_url=url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            concurrency=concurrency,
            video_mode=video_mode,
        )
        text_name = text_model or video_model
        video_name = video_model or text_model
        text_lm = OpenAIChatLM(text_name, **http)  # type: ignore[arg-type]
        video_lm = text_lm if video_name == text_name else OpenAIChatLM(video_name, **http)  # type: ignore[arg-type]
        return Relabeler(text_lm, video_lm, **common)
    raise ValueError(f"unknown LM backend {backend!r}; use 'transformers', 'openai' or an LM object")
