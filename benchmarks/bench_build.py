"""Build throughput (episodes/s) and peak RSS of ``roboreward build`` without LM relabeling.

Generates LeRobot-layout sources of N episodes (every episode a success, so each yields the original plus four
temporal clips, the heaviest case), then times ``build_dataset`` in a fresh subprocess per size so peak RSS is
per build. Appends a section to BENCHMARKS.md.

    python benchmarks/bench_build.py                       # 200 and 2,000 episodes, 2 workers
    python benchmarks/bench_build.py --sizes 200 --workers 1 --layout v3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

FRAMES = 40  # 4 s at 10 fps
SIZE = (128, 160)  # height, width


def make_source(root: Path, n: int, layout: str) -> None:
    """``n`` episodes: v2.1 (one mp4 per episode, copied by the builder) or v3 (50 episodes per mp4, cut)."""
    from build_helpers import episode_frames, make_lerobot_v3

    from roboreward.video import write_video

    tasks = [f"put the {c} block in the bowl" for c in ("red", "green", "blue", "yellow", "white")]
    if layout == "v3":
        make_lerobot_v3(
            root,
            [FRAMES] * n,
            [tasks[i % 5] for i in range(n)],
            cameras=("observation.images.front",),
            per_file=50,
            size=SIZE,
        )
        return
    key = "observation.images.front"
    (root / "meta").mkdir(parents=True)
    info = {
        "codebase_version": "v2.1",
        "robot_type": "bench",
        "fps": 10,
        "chunks_size": 1000,
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {key: {"dtype": "video", "shape": [SIZE[0], SIZE[1], 3]}},
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    distinct = [
        write_video(root / f"proto_{i}.mp4", episode_frames(FRAMES, i, h=SIZE[0], w=SIZE[1]), 10) for i in range(20)
    ]
    lines = []
    for ep in range(n):
        dst = root / f"videos/chunk-{ep // 1000:03d}/{key}/episode_{ep:06d}.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(distinct[ep % len(distinct)], dst)
        lines.append(json.dumps({"episode_index": ep, "tasks": [tasks[ep % 5]], "length": FRAMES}))
    for p in distinct:
        p.unlink()
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")


def run_one(source: Path, out: Path, workers: int, shard_size: int) -> dict:
    """Build in this process (called in a fresh subprocess); returns timing and peak RSS of it and its workers."""
    from roboreward.dataset import build_dataset

    t0 = time.perf_counter()
    summary = build_dataset([f"lerobot:{source}"], out, workers=workers, shard_size=shard_size, show_progress=False)
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "episodes": summary.episodes_built,
        "examples": sum(summary.counts.values()),
        "seconds": seconds,
        "episodes_per_s": summary.episodes_built / seconds,
        "peak_rss_main_mib": own,
        "peak_rss_worker_mib": kids,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,2000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=16)
    ap.add_argument("--layout", choices=("v21", "v3"), default="v21")
    ap.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    ap.add_argument("--_one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_make", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._make:  # in its own process: the generator's memory must not count towards the build's peak RSS
        make_source(Path(args._make[1]), int(args._make[0]), args.layout)
        return
    if args._one:
        print(json.dumps(run_one(Path(args._one[0]), Path(args._one[1]), args.workers, args.shard_size)))
        return
    from common import append_section, markdown_table

    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
            src = Path(tmp) / "src" / "bench_robot"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--layout", args.layout, "--_make", str(n), str(src)], check=True)
            gen = time.perf_counter() - t0
            cmd = [
                sys.executable,
                __file__,
                "--workers",
                str(args.workers),
                "--shard-size",
                str(args.shard_size),
                "--_one",
                str(src),
                str(Path(tmp) / "out"),
            ]
            res = json.loads(
                subprocess.run(
                    cmd, check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            print(
                f"{n} episodes: {res['episodes_per_s']:.1f} ep/s, {res['seconds']:.1f} s (source made in {gen:.0f} s)"
            )
            rows.append(
                [
                    n,
                    res["examples"],
                    args.workers,
                    f"{res['seconds']:.1f}",
                    f"{res['episodes_per_s']:.1f}",
                    f"{res['peak_rss_main_mib']:.0f}",
                    f"{res['peak_rss_worker_mib']:.0f}",
                ]
            )
    table = markdown_table(
        ["episodes", "examples", "workers", "seconds", "episodes/s", "peak RSS main (MiB)", "peak RSS worker (MiB)"],
        rows,
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    notes = (
        f"Load average at the end {load} (the 2 cores are shared with other jobs: figures vary up to ~2x between "
        "runs). "
        f"LeRobot {args.layout} source, {FRAMES} frames of {SIZE[1]}x{SIZE[0]} at 10 fps per episode, every "
        "episode a success (original + 4 temporal clips = 5 examples), shard size "
        f"{args.shard_size}, no LM relabeling."
    )
    print(table)
    if not args.no_append:
        layout = {"v21": "LeRobot v2.1", "v3": "LeRobot v3"}[args.layout]
        append_section(f"Dataset build throughput, {layout} source (bench_build.py)", table, notes=notes)


if __name__ == "__main__":
    main()
