"""A scripted "world" answering the relabeling prompts like a well-behaved LM would, with knobs for failures.

It recognises each stage by its prompt (the files in roboreward/prompts), so the same script drives the
in-process :class:`ScriptedLM` and the real local HTTP server (:mod:`openai_server`).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from roboreward.relabel import LM, LMRequest


@dataclass
class ScriptedLM(LM):
    """A backend answering from a Python function ``reply(request) -> str`` (tests, dry runs, debugging).

    ``requests`` records every request it answered.
    """

    reply: Any
    name: str = "scripted"
    supports_video: bool = True
    requests: list[LMRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def generate(self, request: LMRequest) -> str:
        with self._lock:
            self.requests.append(request)
        return str(self.reply(request))


def prompt_of(req: dict) -> str:
    """The prompt text of a chat-completions request body (last text part of the user turn)."""
    content = req["messages"][-1]["content"]
    return content if isinstance(content, str) else content[-1]["text"]


def has_video(req: dict) -> bool:
    content = req["messages"][-1]["content"]
    return not isinstance(content, str) and any(p["type"] in ("image_url", "video_url") for p in content)


def stage_of(prompt: str) -> str:
    for marker, stage in (
        ("Rewrite the command below", "clean"),
        ("Describe the scene as it is at the END", "scene"),
        ("Propose four concrete failure modes", "failure_modes"),
        ("For each failure mode write one new robot command", "instructions"),
        ("Does the video earn exactly score", "validate"),
        ("paraphrases of the robot command", "paraphrase"),
        ("Label-consistency check", "check"),
    ):
        if marker in prompt:
            return stage
    raise AssertionError(f"unknown prompt: {prompt[:80]!r}")


class World:
    """Answers relabeling prompts. Knobs:

    ``bad_modes``: how many failure-mode answers come out non-monotone first; ``validator_no``: score -> how
    many times the validator says "no" before "yes"; ``inconsistent``: scores the label check calls
    inconsistent; ``garbage``: stages that answer nonsense.
    """

    def __init__(
        self,
        *,
        bad_modes: int = 0,
        validator_no: dict[int, int] | None = None,
        inconsistent: tuple[int, ...] = (),
        garbage: tuple[str, ...] = (),
    ) -> None:
        self.bad_modes = bad_modes
        self.validator_no = dict(validator_no or {})
        self.inconsistent = inconsistent
        self.garbage = garbage
        self.counts: Counter[str] = Counter()
        self.validated: Counter[int] = Counter()
        self.prompts: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, prompt: str, video: bool = False) -> str:
        stage = stage_of(prompt)
        with self._lock:
            self.counts[stage] += 1
            n = self.counts[stage]
            self.prompts.append((stage, prompt))
        if stage in self.garbage:
            return "" if n % 2 else "lorem ipsum dolor"
        return getattr(self, stage)(prompt, n)

    def http(self, req: dict) -> str:
        return self(prompt_of(req), has_video(req))

    # -- stages -------------------------------------------------------------------------------------------
    def clean(self, prompt: str, n: int) -> str:
        cmd = re.search(r"^Command: (.*)$", prompt, re.M).group(1)
        return json.dumps({"instruction": cmd.replace("teh", "the").capitalize()})

    def scene(self, prompt: str, n: int) -> str:
        return (
            "```json\n"
            + json.dumps(
                {
                    "summary": "The robot put the red cup in the sink.",
                    "objects": [
                        {"name": "red cup", "final_state": "in the sink"},
                        {"name": "blue plate", "final_state": "on the counter, left of the sink"},
                    ],
                }
            )
            + "\n```"
        )

    def failure_modes(self, prompt: str, n: int) -> str:
        order = [1, 3, 2, 4] if n <= self.bad_modes else [1, 2, 3, 4]
        modes = [{"score": s, "description": f"failure mode at level {s}"} for s in order]
        return "Here you go: " + json.dumps({"modes": modes})

    def instructions(self, prompt: str, n: int) -> str:
        scores = [int(s) for s in re.findall(r"^- score (\d): failure mode", prompt, re.M)]
        # the draft number follows from the prompt (earlier rejected drafts are quoted in it): deterministic
        out = [
            {"score": s, "instruction": f"put the red cup on spot {s} (draft {1 + prompt.count(f'spot {s} (draft')})"}
            for s in scores
        ]
        return json.dumps({"instructions": out})

    def validate(self, prompt: str, n: int) -> str:
        score = int(re.search(r"exactly score (\d)", prompt).group(1))
        with self._lock:
            self.validated[score] += 1
            k = self.validated[score]
        if k <= self.validator_no.get(score, 0):
            return json.dumps({"answer": "no", "reason": f"the cup is not where score {score} needs it"})
        return json.dumps({"answer": "yes", "reason": "matches the rubric"})

    def paraphrase(self, prompt: str, n: int) -> str:
        k = int(re.search(r"Write (\d+) different paraphrases", prompt).group(1))
        cmd = re.search(r"^Command: (.*)$", prompt, re.M).group(1)
        return json.dumps({"paraphrases": [f"{cmd}, variant {i}" for i in range(k)]})

    def check(self, prompt: str, n: int) -> str:
        score = int(re.search(r"Assigned score: (\d)", prompt).group(1))
        ok = score not in self.inconsistent
        return json.dumps({"consistent": ok, "check": f"The cup position {'fits' if ok else 'does not fit'}."})


def examples_as_rows(result: Any) -> list[dict]:
    return [e.to_row() for e in result.examples]
