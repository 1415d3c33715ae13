"""Build throughput and per-worker peak RSS at real resolutions, H.264 and AV1 sources, next to ffmpeg.

Generates LeRobot v2.1 sources (one mp4 per episode, ffmpeg's ``testsrc2`` pattern: moving, detailed) at
160x128 @ 10 fps (4 s), 640x480 @ 30 fps (15 s and 60 s: memory must not grow with length) and
1280x720 @ 30 fps (60 s), in H.264 (libx264) and AV1 (libsvtav1, LeRobot's default codec). Each is built with the
default output format (at most 10 fps, 320 px, H.264; original + 4 clips per episode, all from one decoding
pass) with 1 and 2 workers, each build in a fresh subprocess so peak RSS is per build (with 1 worker the build
runs in the main process: its RSS is the worker's). Side by side, in the same run: the time ffmpeg takes for the
same decode + resample + encode of one episode (``-vf fps=10,scale=...:flags=area -c:v libx264 -preset
veryfast -crf 23``, one thread like each build worker) and our own transcode of that episode alone
(:func:`roboreward.dataset.media.transcode`, no clips). Appends a section to BENCHMARKS.md.

    python benchmarks/bench_build_video.py                        # the full matrix (about 10 minutes, 2 cores)
    python benchmarks/bench_build_video.py --scale 0.25 --no-write  # a quick look: shorter episodes, fewer of them
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

#: (label, width, height, fps, seconds, episodes)
CONFIGS = [
    ("160x128 @ 10 fps, 4 s", 160, 128, 10, 4.0, 40),
    ("640x480 @ 30 fps, 15 s", 640, 480, 30, 15.0, 4),
    ("640x480 @ 30 fps, 60 s", 640, 480, 30, 60.0, 2),
    ("1280x720 @ 30 fps, 60 s", 1280, 720, 30, 60.0, 2),
]
CODECS = {
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
    "av1": ["-c:v", "libsvtav1", "-preset", "10", "-crf", "35"],
}


def make_source(root: Path, width: int, height: int, fps: int, seconds: float, episodes: int, codec: str) -> Path:
    """A LeRobot v2.1 dataset of ``episodes`` copies of one generated episode (the builder reads each anew)."""
    key = "observation.images.front"
    first = root / f"videos/chunk-000/{key}/episode_000000.mp4"
    first.parent.mkdir(parents=True, exist_ok=True)
    gop = ["-g", str(2 * fps)]
    src = f"testsrc2=size={width}x{height}:rate={fps}"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-t", str(seconds), "-pix_fmt", "yuv420p"]
    subprocess.run([*cmd, *CODECS[codec], *gop, str(first)], check=True, capture_output=True)
    lines = []
    for ep in range(episodes):
        dst = first.with_name(f"episode_{ep:06d}.mp4")
        if ep:
            os.link(first, dst)
        lines.append(json.dumps({"episode_index": ep, "tasks": [f"task {ep % 5}"], "length": int(fps * seconds)}))
    info = {
        "codebase_version": "v2.1",
        "robot_type": "bench",
        "fps": fps,
        "chunks_size": 1000,
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {key: {"dtype": "video", "shape": [height, width, 3]}},
    }
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    return first


def run_build(source: Path, out: Path, workers: int) -> dict:
    """Build in this process (called in a fresh subprocess): seconds, episodes/s, peak RSS of the worker."""
    from roboreward.dataset import build_dataset

    t0 = time.perf_counter()
    summary = build_dataset([f"lerobot:{source}"], out, workers=workers, shard_size=1, show_progress=False)
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert summary.episodes_skipped == 0, summary.report["skipped"][:2]
    return {
        "seconds": seconds,
        "episodes": summary.episodes_built,
        "examples": sum(summary.counts.values()),
        "episodes_per_s": summary.episodes_built / seconds,
        "rss_worker_mib": own if workers == 1 else children,
        "rss_main_mib": own,
    }


def run_transcode(video: Path, out: Path) -> dict:
    """Our decode -> resample -> encode of one episode alone (no clips), in this process. PyAV's import and the
    codec libraries' first load are a worker's one-time cost, not an episode's: a throwaway clip warms them."""
    from roboreward.dataset.media import FrameSource, VideoFormat, transcode

    transcode(FrameSource.from_file(video), VideoFormat(), [(out, 0.01)])
    t0 = time.perf_counter()
    transcode(FrameSource.from_file(video), VideoFormat(), [(out, None)])
    return {"seconds": time.perf_counter() - t0, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_ffmpeg(video: Path, out: Path, width: int, height: int) -> float:
    scale = "scale=320:-2" if width >= height else "scale=-2:320"
    cmd = ["ffmpeg", "-v", "error", "-y", "-threads", "1", "-i", str(video), "-vf", f"fps=10,{scale}:flags=area"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-x264-params", "threads=1", "-an", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def _sub(fn: str, *args: Path | int) -> dict:
    """Run ``fn`` of this module in a fresh interpreter (its own peak RSS); returns its JSON result."""
    cmd = [sys.executable, __file__, "--_run", fn, *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply episode lengths and counts (quick runs)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--codecs", default="h264,av1")
    parser.add_argument("--configs", default="", help="comma-separated indices into CONFIGS (default: all)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not append to BENCHMARKS.md")
    parser.add_argument("--_run", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._run:  # in its own process (see _sub)
        fn, *rest = args._run
        if fn == "run_build":
            print(json.dumps(run_build(Path(rest[0]), Path(rest[1]), int(rest[2]))))
        else:
            print(json.dumps(run_transcode(Path(rest[0]), Path(rest[1]))))
        return
    workers = [int(w) for w in args.workers.split(",")]
    picked = [CONFIGS[int(i)] for i in args.configs.split(",")] if args.configs else CONFIGS
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-build-video-"))
    load0 = os.getloadavg()
    try:
        for label, w, h, fps, secs, n in picked:
            secs, n = max(1.0, secs * args.scale), max(2, round(n * args.scale))
            for codec in args.codecs.split(","):
                src = tmp / f"src-{w}x{h}-{secs:g}-{codec}" / "ds"
                t0 = time.perf_counter()
                first = make_source(src, w, h, fps, secs, n, codec)
                gen = time.perf_counter() - t0
                ffs, ourss = [], []
                for _ in range(3):  # interleaved, best of 3: the shared cores' load changes from second to second
                    ffs.append(run_ffmpeg(first, tmp / "ff.mp4", w, h))
                    ourss.append(_sub("run_transcode", first, tmp / "ours.mp4")["seconds"])
                ff, ours = min(ffs), min(ourss)
                for k in workers:
                    out = tmp / f"out-{w}-{codec}-{k}"
                    res = _sub("run_build", src, out, k)
                    shutil.rmtree(out)
                    row = {"source": f"{label.split(',')[0]}, {secs:g} s", "codec": codec, "workers": k, **res}
                    row |= {"ffmpeg_s": ff, "ours_s": ours, "ratio": ours / ff, "n": n}
                    rows.append(row)
                    print(
                        f"{row['source']} {codec} x{n} w{k}: {res['episodes_per_s']:.2f} ep/s, worker RSS "
                        f"{res['rss_worker_mib']:.0f} MiB; one episode: ours {ours:.2f} s, ffmpeg {ff:.2f} s "
                        f"(x{ours / ff:.2f}); source made in {gen:.0f} s",
                        flush=True,
                    )
                shutil.rmtree(src.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()
    if not args.no_write:
        write_section(rows, load0, load1)


def write_section(rows: list[dict], load0: tuple, load1: tuple) -> None:
    from common import append_section, markdown_table

    header = ["source", "codec", "episodes", "workers", "episodes/s", "peak RSS per worker (MiB)"]
    header += ["one episode: ours (s)", "one episode: ffmpeg (s)", "ours / ffmpeg"]
    table = markdown_table(
        header,
        [
            [r["source"], r["codec"], r["n"], r["workers"], f"{r['episodes_per_s']:.2f}", f"{r['rss_worker_mib']:.0f}"]
            + [f"{r['ours_s']:.2f}", f"{r['ffmpeg_s']:.2f}", f"{r['ratio']:.2f}"]
            for r in rows
        ],
    )
    notes = (
        f"Load average {load0[0]:.1f} at the start and {load1[0]:.1f} at the end (the 2 cores are shared with other "
        "jobs). Output: the default format (at most 10 fps, 320 px on the long side, H.264 crf 23 veryfast), "
        'original + 4 temporal clips per episode from one pass, shard size 1. "one episode": that '
        "episode alone (no clips), best of 3 interleaved runs, one thread each; ffmpeg: "
        "`-vf fps=10,scale=320:-2:flags=area -c:v libx264 -preset veryfast -crf 23`. Sources: ffmpeg's testsrc2 "
        "pattern, GOP 2 s; the clips are the first packets of the episode's encode (no second encode)."
    )
    append_section(
        "Dataset build at real resolutions, H.264 and AV1 sources, next to ffmpeg (bench_build_video.py)",
        table,
        notes=notes,
    )


if __name__ == "__main__":
    main()
