"""Scoring throughput: batched vs one-at-a-time on a tiny random Qwen-VL (CPU).

    python benchmarks/bench_scoring.py [--family qwen3_vl] [--items 32] [--batch-sizes 4 8 16] [--threads 1]

``one-at-a-time`` calls ``RewardModel.score`` per example; ``batch=B`` calls ``score_batch`` on all examples with
``batch_size=B`` (left padding, one forward pass per B examples, logits only at the last position). Inputs are
in-memory frames (decode excluded: the model path only) and mp4 files (decode included, what ``roboreward
eval`` does). Each example is a 20-frame 96x64 clip sampled at 2 fps up to 4 frames, with its own instruction.
The tiny model has the real Qwen vocabulary, so the per-call fixed costs (processor, chat template, vision and
text forward set-up) are real; only the layers are small. Target (issue 4): batched >= 3x one-at-a-time.
``results file`` is ``roboreward score``'s many-videos path (``scoring.batch.score_to_files``: the same batches,
each appended and fsynced to a resumable jsonl, a parquet at the end), to show what the bookkeeping costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from common import append_section, markdown_table  # noqa: E402
from conftest import make_frames  # noqa: E402

from roboreward.sampling import FrameSampling  # noqa: E402
from roboreward.scoring import load_scorer  # noqa: E402
from roboreward.video import write_video  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Best wall and CPU seconds over ``repeats`` runs, and the last output."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="qwen3_vl", choices=["qwen3_vl", "qwen2_5_vl"])
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    scorer = load_scorer(f"tiny:{args.family}", sampling=FrameSampling(fps=2.0, max_frames=4))
    frames = [make_frames(20, seed=i) for i in range(args.items)]
    tasks = [f"move object number {i} to the {['left', 'right', 'shelf', 'bin'][i % 4]}" for i in range(args.items)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    paths = [write_video(tmp / f"{i}.mp4", f, fps=10) for i, f in enumerate(frames)]
    scorer.score_batch(frames[:2], tasks[:2])  # warm-up

    rows, agree = [], 0.0
    for label, videos in (("frames", frames), ("mp4", paths)):
        w1, c1, singles = timed(
            lambda v=videos: [scorer.score(x, t) for x, t in zip(v, tasks, strict=True)], args.repeats
        )
        rows.append([label, "one-at-a-time", w1, c1, 1000 * w1 / args.items, "1.0", "1.0"])
        for b in args.batch_sizes:
            scorer.batch_size = b
            wb, cb, batched = timed(lambda v=videos: scorer.score_batch(v, tasks), args.repeats)
            rows.append([label, f"batch={b}", wb, cb, 1000 * wb / args.items, f"{w1 / wb:.1f}", f"{c1 / cb:.1f}"])
            diff = np.abs(np.array([s.probs for s in singles]) - np.array([o.probs for o in batched])).max()
            agree = max(agree, float(diff))
    # the CLI's many-videos path: the same batches through the resumable results file (append + fsync per batch,
    # parquet at the end); a fresh file per repeat so every run scores everything
    from roboreward.scoring.batch import ScoreItem, score_to_files

    scorer.batch_size = b = max(args.batch_sizes)
    items = [ScoreItem(str(p), p, t) for p, t in zip(paths, tasks, strict=True)]
    outs = iter(range(args.repeats))
    wf, cf, files = timed(
        lambda: score_to_files(scorer, items, tmp / f"results-{next(outs)}.jsonl", batch_size=b, show_progress=False),
        args.repeats,
    )
    assert files.run.scored == args.items
    rows.append(["mp4", f"results file, batch={b}", wf, cf, 1000 * wf / args.items, f"{w1 / wf:.1f}", f"{c1 / cf:.1f}"])
    table = markdown_table(
        ["input", "mode", "wall s", "CPU s", "ms / example (wall)", "speed-up (wall)", "speed-up (CPU)"], rows
    )
    notes = (
        f"Tiny {args.family} (text hidden 64, 2 layers; vision depth 2; real Qwen vocabulary), {args.items} examples, "
        f"torch threads {args.threads}, best of {args.repeats}, load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores while measuring. Max |p_batched - p_single| over all runs: {agree:.1e}."
    )
    if args.no_append:
        print(table)
        print(notes)
    else:
        append_section(f"Scoring: batched vs one-at-a-time, tiny {args.family} on CPU (issue 4)", table, notes=notes)


if __name__ == "__main__":
    main()
