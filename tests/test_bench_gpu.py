"""benchmarks/bench_gpu.py: the committed real-size configs, the FLOP accounting, and a CPU run on the tiny configs."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_module

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    return load_module(SCRIPT)


#: Published totals (Hub model pages / model cards) and text widths of the four bases.
PUBLISHED = {
    "qwen3-vl-4b": (4.44e9, 2560, True),
    "qwen3-vl-8b": (8.77e9, 4096, False),
    "qwen2.5-vl-3b": (3.75e9, 2048, True),
    "qwen2.5-vl-7b": (8.29e9, 3584, False),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_real_configs_build_at_published_size(bench, name: str) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    total, hidden, tied = PUBLISHED[name]
    config = AutoConfig.from_pretrained(str(bench.CONFIGS / bench.MODELS[name][0]))
    with torch.device("meta"):  # shapes only: no memory, no weights
        model = AutoModelForImageTextToText.from_config(config)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - total) / total < 0.005, f"{name}: {n / 1e9:.3f}B parameters, published {total / 1e9:.2f}B"
    assert config.get_text_config().hidden_size == hidden
    assert (model.get_output_embeddings().weight is model.get_input_embeddings().weight) is tied
    assert config.get_text_config().vocab_size >= 151669  # every id of the Qwen tokenizer fits
    dims = bench.ModelDims.of(model)
    assert dims.total < n  # embeddings (lookups) are not matmul weights
    assert dims.lm_layers == config.get_text_config().num_hidden_layers
    recipe = REPO / "recipes" / bench.MODELS[name][1] / "sft"
    assert (recipe / "config_full.yaml").is_file() and (recipe / "config_qlora.yaml").is_file()


def test_flop_count_by_hand(bench) -> None:
    dims = bench.ModelDims(
        vision=100, merger=10, lm=1000, head=50, lm_layers=2, lm_attn_dim=8, vision_layers=3, vision_dim=4, merge=2
    )
    shape = bench.BatchShape(rows=(10, 6), grids=((2, 4, 4),), head_positions=2)
    patches, merged = 2 * 4 * 4, 2 * 4 * 4 / 4
    expected = {
        "vision": 2 * 100 * patches + 3 * (4 * 16**2 * 4 * 2),  # 3 layers, 2 temporal slices of 16 patches
        "merger": 2 * 10 * merged,
        "lm": 2 * 1000 * 16,
        "lm_attn": 2 * 2 * 8 * (10**2 + 6**2),  # causal half of QK^T + AV
        "head": 2 * 50 * 2 * 2,
    }
    assert bench.forward_flops(dims, shape) == pytest.approx(expected)
    full = bench.train_flops(dims, shape, "full")
    assert full == pytest.approx(
        expected["vision"] + 3 * (expected["merger"] + expected["lm"] + expected["lm_attn"] + expected["head"])
    )
    qlora = bench.train_flops(dims, shape, "qlora", lora_params=7)
    assert qlora == pytest.approx(
        expected["vision"] + expected["merger"] + 2 * expected["lm"] + 3 * expected["lm_attn"] + 2 * expected["head"]
        + 6 * 7 * 16
    )  # fmt: skip
    # Qwen2.5-VL windows: 8 patches a side -> a 12x20 slice is 2x3 windows of 8x8, 8x4, 4x8, 4x4 patches
    windowed = dataclasses.replace(dims, window=8, full_layers=(2,))
    wide = bench.BatchShape(rows=(1,), grids=((1, 12, 20),), head_positions=0)
    sizes = [a * b for a in (8, 4) for b in (8, 8, 4)]
    vis_attn = 1 * 4 * (12 * 20) ** 2 * 4 + 2 * sum(4 * s**2 * 4 for s in sizes)
    assert bench.forward_flops(windowed, wide)["vision"] == pytest.approx(2 * 100 * 240 + vis_attn)


def _finite_positive(row: dict, keys: tuple[str, ...]) -> None:
    for k in keys:
        v = row[k]
        assert isinstance(v, int | float) and not isinstance(v, bool), (k, v)
        assert math.isfinite(v) and v > 0, (k, v)


@pytest.mark.slow
def test_cpu_run_on_tiny_configs(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    cmd = [sys.executable, str(SCRIPT), "--models", "tiny-qwen3-vl", "--device", "cpu", "--quick"]
    cmd += ["--batch-sizes", "2", "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "bench_gpu.json").read_text())
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    _finite_positive(report, ("peak_tflops", "matmul_tflops", "total_wall_s"))
    (model,) = report["models"]
    assert model["name"] == "tiny-qwen3-vl" and model["family"] == "qwen3_vl"
    assert model["params"]["total"] > 0 and model["build_s"] > 0
    scoring = {(s["protocol"], s["batch_size"]): s for s in model["scoring"]}
    assert set(scoring) == {("default", 2), ("full-video", 2)}
    for s in scoring.values():
        assert "error" not in s and "skipped" not in s, s
        _finite_positive(s, ("episodes_per_s", "ms_per_episode", "seconds", "tokens_per_episode", "tflops", "mfu"))
        assert s["episodes_per_s"] * s["ms_per_episode"] == pytest.approx(1000.0)
        assert s["visual_tokens_per_episode"] < s["tokens_per_episode"]
    # 6 s at 10 fps: our default samples 2 fps clamped to 8 frames; the full-video protocol keeps every 2 fps frame
    assert scoring["default", 2]["frames"] == 8 and scoring["full-video", 2]["frames"] == 12
    assert (
        scoring["full-video", 2]["visual_tokens_per_episode"]
        == 1.5 * scoring["default", 2]["visual_tokens_per_episode"]
    )
    training = {t["recipe"]: t for t in model["training"]}
    assert set(training) == {"full", "qlora"}
    for recipe, t in training.items():
        assert "error" not in t and "skipped" not in t, t
        _finite_positive(t, ("step_s", "collate_s", "tokens_per_step", "tokens_per_s", "tflops", "mfu"))
        assert t["config"] == f"recipes/qwen3-vl-4b/sft/config_{recipe}.yaml"
        assert t["tokens_per_s"] == pytest.approx(t["tokens_per_step"] / t["step_s"])
    assert (training["full"]["micro_batch"], training["full"]["accumulation"]) == (2, 4)  # the 4B full recipe
    assert (training["qlora"]["micro_batch"], training["qlora"]["accumulation"]) == (4, 2)
    assert training["qlora"]["quantized_layers"] > 0 and training["full"]["quantized_layers"] == 0
    assert training["qlora"]["trainable_params"] < training["full"]["trainable_params"] / 100  # LoRA adapters only
    md = (out / "bench_gpu.md").read_text()
    for row in (*model["scoring"], *model["training"]):
        assert "tiny-qwen3-vl" in md and f"| {row.get('protocol', row.get('recipe'))} |" in md
    assert f"{scoring['default', 2]['episodes_per_s']:.3g}" in md
    assert f"{training['full']['tokens_per_s']:.3g}" in md
