"""Prompts and answer parsing of the relabeling stages.

Prompts are files in :mod:`roboreward.prompts` (``relabel_*.txt``) that quote the rubric
(:data:`roboreward.rubric.RUBRIC`); every answer is parsed as JSON and validated against
``relabel_schemas.json`` plus stage rules (ordering, distinctness). A :class:`BadAnswer` says why an answer
cannot be used; its message is quoted back to the model on retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from string import Template
from typing import Any

from roboreward.rubric import RUBRIC, SCORE_NAMES, load_prompt

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
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def parse_clean(text: str | None) -> str:
    """The rewritten instruction of a ``clean`` answer (non-empty)."""
    out = one_line(parse_json(text, "clean")["instruction"])
    if not out:
        raise BadAnswer("the rewritten instruction is empty")
    return out


def parse_scene(text: str | None) -> str:
    """A ``scene`` answer as prompt text: the summary, then one ``- object: final state`` line per object."""
    scene = parse_json(text, "scene")
    objects = "\n".join(f"- {one_line(o['name'])}: {one_line(o.get('final_state', ''))}" for o in scene["objects"])
    return one_line(scene["summary"]) + "\n" + objects


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


def parse_instructions(text: str | None, modes: Sequence[dict[str, Any]], taken: set[str]) -> dict[int, str]:
    """score -> new instruction, one per mode in order, none repeating ``taken`` (normalised) or each other."""
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


def parse_paraphrases(text: str | None, source: str, n: int) -> list[str]:
    """``n`` distinct paraphrases of ``source`` that differ from it (after normalisation)."""
    items = [one_line(p) for p in parse_json(text, "paraphrase")["paraphrases"]]
    out, seen = [], {norm(source)}
    for p in items:
        if norm(p) and norm(p) not in seen:
            seen.add(norm(p))
            out.append(p)
    if len(out) < n:
        raise BadAnswer(f"got {len(out)} usable paraphrases (distinct, different from the command); {n} are needed")
    return out[:n]


def parse_check(text: str | None) -> tuple[bool, str]:
    """``(consistent, written check)`` of a label-check answer."""
    obj = parse_json(text, "check")
    return bool(obj["consistent"]), one_line(obj["check"])
