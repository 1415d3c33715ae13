"""Nothing gets in: no pickle / eval / exec / remote code in the package, safetensors only, dataset paths
cannot leave the dataset folder (released layout, LeRobot templates, RoboArena policy folders), Hub-cache
symlinks still work, and the demo refuses non-video content and oversized uploads."""

from __future__ import annotations

import inspect
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from build_helpers import make_lerobot_v21, make_roboarena
from conftest import make_frames

from roboreward.dataset import DatasetFormatError, read_split, safe_join
from roboreward.video import write_video

REPO = Path(__file__).resolve().parents[1]
#: Package code and the thin top-level entry points.
CODE = sorted(
    p
    for folder in ("roboreward", "dataset_builder", "recipes", "eval_metric", "spaces", "examples", "scripts")
    for p in (REPO / folder).rglob("*.py")
    if ".venv" not in p.parts
)


# ------------------------------------------------------------------------------------------------ static checks


def _code_lines(path: Path):
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        code = line.split("#", 1)[0]
        if code.strip():
            yield n, line, code


FORBIDDEN = [
    (
        re.compile(r"\b(import\s+(c?pickle|dill|joblib|marshal|shelve)|from\s+(c?pickle|dill|joblib)\s+import)", re.I),
        "pickle",
    ),
    (re.compile(r"(?<![\w.])(eval|exec)\s*\("), "eval/exec"),
    (re.compile(r"trust_remote_code\s*[:=]\s*(bool\s*=\s*)?True"), "trust_remote_code=True"),
    (re.compile(r"\byaml\.load\s*\((?![^)]*SafeLoader)"), "yaml.load without SafeLoader"),
    (re.compile(r"shell\s*=\s*True"), "shell=True"),
    (re.compile(r"\b(np|numpy)\.load\s*\([^)]*allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"safe_serialization\s*=\s*False"), "safe_serialization=False"),
    (re.compile(r"use_safetensors\s*=\s*False"), "use_safetensors=False"),
]


def test_package_source_has_no_pickle_eval_exec_or_remote_code():
    assert len(CODE) > 20
    hits = []
    for path in CODE:
        for n, line, code in _code_lines(path):
            for pattern, what in FORBIDDEN:
                if pattern.search(code):
                    hits.append(f"{path.relative_to(REPO)}:{n}: {what}: {line.strip()}")
            # torch.load only with weights_only=True (look at the whole call, which may span lines)
            if "torch.load(" in code:
                text = path.read_text(encoding="utf-8").splitlines()
                call = " ".join(text[n - 1 : n + 4])
                if "weights_only=True" not in call:
                    hits.append(f"{path.relative_to(REPO)}:{n}: torch.load without weights_only=True")
    assert not hits, "\n".join(hits)


def test_the_static_check_catches_what_it_looks_for():
    """The patterns are not vacuous: each one flags a line that does the forbidden thing."""
    bad = [
        "import pickle",
        "from cPickle import loads",
        "x = eval(text)",
        "exec(code)",
        "m = Auto.from_pretrained(p, trust_remote_code=True)",
        "def load(trust_remote_code: bool = True):",
        "yaml.load(fh)",
        "subprocess.run(cmd, shell=True)",
        "np.load(f, allow_pickle=True)",
        "model.save_pretrained(out, safe_serialization=False)",
    ]
    for line in bad:
        assert any(p.search(line) for p, _ in FORBIDDEN), line
    for fine in ["model.eval()", "yaml.load(fh, Loader=yaml.SafeLoader)", "trust_remote_code=trust_remote_code"]:
        assert not any(p.search(fine) for p, _ in FORBIDDEN), fine


def test_trust_remote_code_is_off_unless_asked():
    from roboreward.relabel import TransformersLM
    from roboreward.scoring import RewardModel
    from roboreward.scoring.vlm import load_model

    for fn in (load_model, RewardModel.__init__, TransformersLM.__init__):
        assert inspect.signature(fn).parameters["trust_remote_code"].default is False, fn.__qualname__
    # training: the TRL config flag (SFTConfig.trust_remote_code), off by default
    import dataclasses

    from trl import SFTConfig

    assert {f.name: f.default for f in dataclasses.fields(SFTConfig)}["trust_remote_code"] is False


def _as_pickle_checkpoint(src: Path, dst: Path) -> Path:
    """A copy of a tiny model whose weights are a pytorch_model.bin pickle instead of safetensors."""
    import shutil

    import torch
    from safetensors.torch import load_file

    shutil.copytree(src, dst)
    state = {}
    for f in dst.glob("*.safetensors"):
        state.update(load_file(f))
        f.unlink()
    for f in dst.glob("*.safetensors.index.json"):
        f.unlink()
    torch.save(state, dst / "pytorch_model.bin")
    return dst


def test_vlm_weights_load_from_safetensors_only(tiny_qwen3_vl, tmp_path):
    from roboreward.scoring.vlm import load_model

    assert list(tiny_qwen3_vl.glob("*.safetensors")) and not list(tiny_qwen3_vl.glob("*.bin"))
    pickled = _as_pickle_checkpoint(tiny_qwen3_vl, tmp_path / "pickled")
    with pytest.raises(OSError, match="safetensors"):
        load_model(pickled)


def test_text_lm_weights_load_from_safetensors_only(tiny_qwen3, tmp_path):
    from roboreward.relabel import LMError, LMRequest, TransformersLM

    pickled = _as_pickle_checkpoint(tiny_qwen3, tmp_path / "pickled")
    lm = TransformersLM(str(pickled))
    with pytest.raises(LMError, match="safetensors"):
        lm.generate(LMRequest(prompt="hi", max_tokens=2))


# ------------------------------------------------------------------------------------------------ dataset paths


def _release(root: Path, rows: list[dict], split: str = "test") -> Path:
    sdir = root / split
    sdir.mkdir(parents=True, exist_ok=True)
    write_video(sdir / "bridge" / "ok.mp4", make_frames(4, 32, 48), fps=10)
    (sdir / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


ESCAPES = ["../../etc/passwd", "/etc/passwd", "bridge/../../secret.mp4", "bridge/../../../etc/passwd", "../secret.mp4"]


@pytest.mark.parametrize("name", ESCAPES)
def test_released_rows_cannot_escape_the_dataset(tmp_path, name):
    (tmp_path / "secret.mp4").write_bytes(b"private")
    root = _release(tmp_path / "ds", [{"file_name": "bridge/ok.mp4", "task": "t", "reward": 5}])
    _release(
        root, [{"file_name": "bridge/ok.mp4", "task": "t", "reward": 5}, {"file_name": name, "task": "t", "reward": 1}]
    )
    with pytest.raises(DatasetFormatError, match="escapes|absolute") as info:
        read_split(root, "test", check_files=False)
    assert "metadata.jsonl:2" in str(info.value)


def test_symlink_out_of_a_local_dataset_is_rejected(tmp_path):
    (tmp_path / "secret.mp4").write_bytes(b"private")
    root = _release(tmp_path / "ds", [{"file_name": "bridge/link.mp4", "task": "t", "reward": 1}])
    os.symlink(tmp_path / "secret.mp4", root / "test" / "bridge" / "link.mp4")
    with pytest.raises(DatasetFormatError, match="escapes"):
        read_split(root, "test")


def test_hub_cache_snapshot_symlinks_are_accepted(tmp_path):
    """huggingface_hub's cache: snapshots/<rev>/<file> are relative symlinks into the repo's blobs/ folder."""
    repo = tmp_path / "hub" / "datasets--teetone--RoboReward"
    snap = repo / "snapshots" / ("a" * 40)
    blobs = repo / "blobs"
    blobs.mkdir(parents=True)
    files = {"test/bridge/ep0.mp4": None, "test/metadata.jsonl": None}
    buf = io.BytesIO()
    write_video(tmp_path / "v.mp4", make_frames(4, 32, 48), fps=10)
    files["test/bridge/ep0.mp4"] = (tmp_path / "v.mp4").read_bytes()
    files["test/metadata.jsonl"] = (
        json.dumps({"file_name": "bridge/ep0.mp4", "task": "t", "reward": 3}) + "\n"
    ).encode()
    del buf
    for rel, data in files.items():
        blob = blobs / f"{abs(hash(rel)):x}"
        blob.write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    rows = read_split(snap, "test")
    assert len(rows) == 1 and rows[0].reward == 3 and rows[0].video_path.is_file()
    # a snapshot link that leaves the repo's blobs is still refused
    os.symlink(tmp_path / "v.mp4", snap / "test" / "bridge" / "out.mp4")
    with pytest.raises(DatasetFormatError, match="escapes"):
        safe_join(snap / "test", "bridge/out.mp4")


def test_build_and_eval_refuse_an_escaping_row(tmp_path):
    (tmp_path / "secret.mp4").write_bytes(b"private")
    root = _release(
        tmp_path / "ds",
        [
            {"file_name": "bridge/ok.mp4", "task": "t", "reward": 5},
            {"file_name": "../../secret.mp4", "task": "t", "reward": 1},
        ],
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "roboreward", "build", "--source", f"released:{root}", "--out", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert build.returncode == 2 and "escapes the dataset folder" in build.stderr
    assert not list((tmp_path / "out").rglob("*.mp4"))

    from roboreward.evaluation import evaluate_models

    with pytest.raises(DatasetFormatError, match="escapes the dataset folder"):
        evaluate_models(["x=tiny"], dataset=root, out_dir=tmp_path / "eval", show_progress=False)


def test_lerobot_video_path_template_cannot_leave_the_dataset(tmp_path):
    from roboreward.dataset import build_dataset

    root = make_lerobot_v21(tmp_path / "src" / "ds", [6], ["wave"])
    outside = tmp_path / "private"
    write_video(outside / "observation.images.top" / "episode_000000.mp4", make_frames(6, 32, 128), fps=10)
    info = json.loads((root / "meta" / "info.json").read_text())
    info["video_path"] = "../../private/{video_key}/episode_{episode_index:06d}.mp4"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    summary = build_dataset([f"lerobot:{root}"], tmp_path / "out", clip_fractions="none", show_progress=False)
    assert summary.episodes_built == 0 and summary.episodes_skipped == 1
    skipped = summary.report["skipped"][0]
    assert skipped["field"] == "video_path" and "escapes" in skipped["error"]
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_roboarena_policy_name_cannot_leave_the_session(tmp_path):
    import yaml

    from roboreward.dataset import build_dataset

    root = make_roboarena(tmp_path / "arena", [{"a": 1.0, "b": 1.0}], frames=6)
    sdir = root / "evaluation_sessions" / "session_000"
    # a folder outside the session that a crafted policy name points at
    write_video(tmp_path / "A_x" / "left_shoulder.mp4", make_frames(6, 32, 128), fps=10)
    meta = yaml.safe_load((sdir / "metadata.yaml").read_text())
    for side in ("A", "B"):
        for p in sdir.glob(f"{side}_*"):
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
    meta["policies"]["A"]["policy_name"] = "x/../../../../A_x"
    (sdir / "A_x").mkdir()  # makes the crafted path resolvable
    (sdir / "metadata.yaml").write_text(yaml.safe_dump(meta))
    summary = build_dataset([f"roboarena:{root}"], tmp_path / "out", clip_fractions="none", show_progress=False)
    assert summary.episodes_built == 0
    assert not list((tmp_path / "out").rglob("*.mp4"))


# ------------------------------------------------------------------------------------------------ the demo


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("page.html", b"<html><script>alert(1)</script></html>", "not a video file (text/html)"),
        ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a video file (image/svg+xml)"),
        ("run.exe", b"MZ\x90\x00", "not a video file"),
        ("data.pkl", b"\x80\x04\x95", "not a readable video"),
        ("photo.mp4", None, "not a video file (the content is a PNG image)"),
        ("noextension", None, "not a video file (the content is a PNG image)"),
        ("page.mp4", b"<html></html>", "not a readable video"),
    ],
)
def test_demo_refuses_non_video_content(tmp_path, name, data, message):
    from roboreward import demo as D

    path = tmp_path / name
    path.write_bytes(_png_bytes() if data is None else data)
    with pytest.raises(D.DemoInputError, match=re.escape(message)):
        D.check_video(path, D.Limits())


def test_demo_refuses_uploads_over_the_limit(tmp_path):
    from roboreward import demo as D

    path = write_video(tmp_path / "big.mp4", np.random.default_rng(0).integers(0, 255, (20, 64, 96, 3), np.uint8), 10)
    limits = D.Limits(max_file_mb=path.stat().st_size / 2**20 / 2)
    with pytest.raises(D.DemoInputError, match="over the .* MB limit"):
        D.check_video(path, limits)
    assert D.check_video(path, D.Limits()).num_frames == 20
