"""Frame sampling: our sampler vs decoding every frame with PyAV vs ``ffmpeg -ss`` seeking (the practical limit).

    python benchmarks/bench_sampling.py [--durations 10 60] [--frames 8 32] [--repeats 3]

Clips are 640x480, 30 fps, H.264 with a keyframe every ``--gops`` frames (250: x264's default; 30: one a
second, common for camera footage; 2: what LeRobot encodes with, for random access). Any sampler that must
return exact frames decodes from the keyframe before each one, so the GOP bounds what seeking can save. ``ours`` is
:func:`roboreward.video.read_video` (torchcodec seek-based when available); ``ours-pyav`` forces the PyAV
fallback; ``full-decode`` decodes every frame with PyAV and keeps the sampled ones; ``ffmpeg-seek`` runs one
``ffmpeg -ss T -i clip -frames:v 1`` per sampled frame (input seeking: decode from the previous keyframe).
Targets (issue 7): ours >= 5x faster than full decode, within 1.5x of the seek limit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_section, markdown_table  # noqa: E402

from roboreward.video import probe, read_video, sample_indices  # noqa: E402


def make_clip(path: Path, seconds: int, gop: int, fps: int = 30, h: int = 480, w: int = 640) -> Path:
    """A moving textured scene (so the encoder has real work), written chunk-wise to bound memory."""
    import av

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (h, w + 400, 3), dtype=np.uint8)
    n = seconds * fps
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(min(gop, 25))}
        for t in range(n):
            x = int(400 * t / n)
            frame = np.ascontiguousarray(texture[:, x : x + w])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def full_decode(path: Path, k: int) -> np.ndarray:
    import av

    info = probe(path)
    wanted = set(sample_indices(info.num_frames, info.fps, num_frames=k))
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            arr = frame.to_ndarray(format="rgb24")  # every frame is decoded and converted
            if i in wanted:
                out.append(arr)
    return np.stack(out)


def ffmpeg_seek(path: Path, k: int) -> np.ndarray:
    info = probe(path)
    out = []
    for i in sample_indices(info.num_frames, info.fps, num_frames=k):
        t = max(0.0, (i - 0.5) / info.fps)  # first frame with pts >= t is frame i
        raw = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-ss",
                f"{t:.4f}",
                "-i",
                str(path),
                "-frames:v",
                "1",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-threads",
                "1",
                "-",
            ],
            check=True,
            capture_output=True,
        ).stdout
        out.append(np.frombuffer(raw, np.uint8).reshape(info.height, info.width, 3))
    return np.stack(out)


def ours(path: Path, k: int) -> np.ndarray:
    return read_video(path, num_frames=k).frames


def ours_pyav(path: Path, k: int) -> np.ndarray:
    os.environ["ROBOREWARD_DECODER"] = "pyav"
    try:
        return read_video(path, num_frames=k).frames
    finally:
        os.environ.pop("ROBOREWARD_DECODER", None)


def timeit(fn, *args, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--durations", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--frames", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gops", type=int, nargs="+", default=[250, 30])
    args = ap.parse_args()
    methods = {"ours": ours, "ours-pyav": ours_pyav, "full-decode": full_decode}
    if shutil.which("ffmpeg"):
        methods["ffmpeg-seek"] = ffmpeg_seek
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for gop, seconds in [(g, d) for g in args.gops for d in args.durations]:
            clip = make_clip(Path(tmp) / f"clip{seconds}-{gop}.mp4", seconds, gop)
            for k in args.frames:
                t = {
                    name: timeit(fn, clip, k, repeats=args.repeats if name != "full-decode" else 1)
                    for name, fn in methods.items()
                }
                row = [f"{seconds} s", gop, k] + [round(t[m] * 1000, 1) for m in methods]
                row.append(round(t["full-decode"] / t["ours"], 1))
                row.append(round(t["ours"] / t["ffmpeg-seek"], 2) if "ffmpeg-seek" in t else "n/a")
                rows.append(row)
                print(row, flush=True)
    header = ["clip", "GOP", "K"] + [f"{m} (ms)" for m in methods] + ["full/ours", "ours/seek"]
    append_section(
        "Frame sampling (640x480, 30 fps, H.264)",
        markdown_table(header, rows),
        notes="Best of repeats (full decode: one run). Target: full/ours >= 5, ours/seek <= 1.5.",
    )


if __name__ == "__main__":
    main()
