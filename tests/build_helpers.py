"""Generators of small source fixtures in each layout the builder reads (LeRobot v3/v2.1, RLDS, RoboArena)."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from roboreward.video import write_video

FPS = 10


def concat_mp4(parts: Sequence[Path], dst: Path) -> list[tuple[float, float]]:
    """Concatenate same-codec mp4s by stream copy (what LeRobot v3 does); returns each part's [t0, t1) in seconds."""
    import av

    spans: list[tuple[float, float]] = []
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dst), mode="w", format="mp4") as out:
        ost = None
        offset = 0  # in the output time base
        for part in parts:
            with av.open(str(part)) as inp:
                st = inp.streams.video[0]
                if ost is None:
                    ost = out.add_stream_from_template(st, opaque=True)  # AV1 too (its decoder is libdav1d)
                    out_tb = st.time_base
                rate = st.average_rate or st.guessed_rate
                frame = int(round(1 / (rate * out_tb)))  # one frame in time-base units
                n = 0
                first = None
                for pkt in inp.demux(st):
                    if pkt.pts is None or pkt.size == 0:
                        continue
                    if first is None:
                        first = pkt.pts
                    pkt.pts = pkt.pts - first + offset
                    if pkt.dts is not None:
                        pkt.dts = pkt.dts - first + offset
                    pkt.stream = ost
                    out.mux(pkt)
                    n += 1
                spans.append((float(offset * out_tb), float((offset + n * frame) * out_tb)))
                offset += n * frame
    return spans


def episode_frames(n: int, seed: int, h: int = 48, w: int = 128) -> np.ndarray:
    """Frames with a per-episode flat colour (so a segment can be told apart) and a moving bar.

    At least 112 px wide: below that, PyAV's bundled x264 gives run-to-run different bytes for the same frames.
    """
    rng = np.random.default_rng(seed)
    color = rng.integers(30, 225, 3).astype(np.uint8)
    frames = np.empty((n, h, w, 3), np.uint8)
    frames[:] = color
    for t in range(n):
        x = int((w - 8) * t / max(n - 1, 1))
        frames[t, :, x : x + 8] = 255 - color
    return frames


def encode_video(
    path: Path, frames: np.ndarray, fps: float = FPS, codec: str = "libx264", *, gop: int | None = None
) -> Path:
    """Encode ``frames`` with a PyAV encoder as the formats' own writers do: ``libx264`` (through
    :func:`roboreward.video.write_video`, the project's bytes), ``libsvtav1`` (AV1, LeRobot's default), ``libx265``
    (HEVC) or ``mpeg4``."""
    from fractions import Fraction

    import av

    if codec == "libx264" and gop is None:
        return write_video(path, frames, fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        opts = {"libsvtav1": {"preset": "12", "crf": "40"}, "libx265": {"preset": "ultrafast", "log-level": "error"}}
        s.codec_context.options = {**opts.get(codec, {}), **({"g": str(gop)} if gop else {})}
        for frame in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def mean_color(frames: np.ndarray) -> np.ndarray:
    return frames[:, :, :].reshape(-1, 3).astype(float).mean(0)


def make_lerobot_v3(
    root: Path,
    lengths: list[int],
    tasks: list[str],
    *,
    cameras: tuple[str, ...] = ("observation.images.front", "observation.images.wrist"),
    per_file: int = 100,
    seed: int = 0,
    concat: bool = True,
    size: tuple[int, int] = (48, 128),
    codec: str = "libx264",
) -> Path:
    """A LeRobot v3.0 dataset; ``per_file`` episodes share one mp4 per camera, with timestamps; ``codec`` as in
    :func:`encode_video` (LeRobot's own default is AV1, ``libsvtav1``).

    ``concat=True`` encodes each episode alone and concatenates the encodes by stream copy, as LeRobot does
    (segments start on keyframes); ``concat=False`` encodes the whole file at once (segments do not).
    """
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    episodes, data_rows = [], []
    index = 0
    files: dict[tuple[str, int], list[np.ndarray]] = {}
    for ep, (n, task) in enumerate(zip(lengths, tasks, strict=True)):
        file_index = ep // per_file
        row = {
            "episode_index": ep,
            "tasks": [task] if task else [],
            "length": n,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": index,
            "dataset_to_index": index + n,
        }
        for c, key in enumerate(cameras):
            chunks = files.setdefault((key, file_index), [])
            start = sum(len(x) for x in chunks)
            chunks.append(episode_frames(n, seed * 1000 + ep * 10 + c, h=size[0], w=size[1]))
            row.update(
                {
                    f"videos/{key}/chunk_index": 0,
                    f"videos/{key}/file_index": file_index,
                    f"videos/{key}/from_timestamp": start / FPS,
                    f"videos/{key}/to_timestamp": (start + n) / FPS,
                }
            )
        episodes.append(row)
        data_rows += [
            {"timestamp": i / FPS, "frame_index": i, "episode_index": ep, "index": index + i, "task_index": 0}
            for i in range(n)
        ]
        index += n
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(episodes).to_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet", index=False)
    pd.DataFrame(data_rows).to_parquet(root / "data" / "chunk-000" / "file-000.parquet", index=False)
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so100",
        "fps": FPS,
        "total_episodes": len(lengths),
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {k: {"dtype": "video", "shape": [48, 128, 3]} for k in cameras}
        | {"timestamp": {"dtype": "float32", "shape": [1]}},
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    for (key, file_index), chunks in files.items():
        dst = root / "videos" / key / "chunk-000" / f"file-{file_index:03d}.mp4"
        if not concat:
            encode_video(dst, np.concatenate(chunks), FPS, codec)
            continue
        parts = [encode_video(root / ".parts" / f"{i}.mp4", c, FPS, codec) for i, c in enumerate(chunks)]
        spans = concat_mp4(parts, dst)
        expected = [
            (round(sum(len(x) for x in chunks[:i]) / FPS, 6), round(sum(len(x) for x in chunks[: i + 1]) / FPS, 6))
            for i in range(len(chunks))
        ]
        assert [(round(a, 6), round(b, 6)) for a, b in spans] == expected, (spans, expected)
        shutil.rmtree(root / ".parts")
    return root


def make_lerobot_v21(
    root: Path,
    lengths: list[int],
    tasks: list[str],
    seed: int = 0,
    *,
    fps: float = FPS,
    size: tuple[int, int] = (48, 128),
    codec: str = "libx264",
) -> Path:
    """A LeRobot v2.1 dataset: one mp4 per episode (``fps``, ``size`` = (height, width), ``codec`` as in
    :func:`encode_video`), meta/episodes.jsonl."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    key = "observation.images.top"
    info = {
        "codebase_version": "v2.1",
        "robot_type": "aloha",
        "fps": fps,
        "chunks_size": 1000,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {key: {"dtype": "video", "shape": [48, 128, 3]}},
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    lines = []
    for ep, (n, task) in enumerate(zip(lengths, tasks, strict=True)):
        lines.append(json.dumps({"episode_index": ep, "tasks": [task], "length": n}))
        frames = episode_frames(n, seed + ep, h=size[0], w=size[1])
        encode_video(root / f"videos/chunk-000/{key}/episode_{ep:06d}.mp4", frames, fps, codec)
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    return root


def png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def rlds_episode_features(n: int, instruction: str, seed: int, *, cameras=("image", "wrist_image")) -> dict:
    """A TFDS-flattened RLDS episode: steps/observation/<camera> PNG frames, steps/language_instruction."""
    feats: dict[str, list] = {}
    for c, cam in enumerate(cameras):
        feats[f"steps/observation/{cam}"] = [png_bytes(f) for f in episode_frames(n, seed * 10 + c)]
    feats["steps/language_instruction"] = [instruction.encode()] * n
    feats["steps/is_first"] = [1] + [0] * (n - 1)
    feats["steps/reward"] = [0.0] * (n - 1) + [1.0]
    feats["steps/action"] = [float(x) for x in np.linspace(-1, 1, n * 7)]
    feats["episode_metadata/file_path"] = [f"/data/raw/ep{seed}.h5".encode()]
    return feats


def make_rlds(root: Path, name: str, episodes: list[tuple[int, str]], *, shards: int = 1, seed: int = 0) -> Path:
    """A TFDS RLDS export ``<root>/<name>/1.0.0/<name>-train.tfrecord-0000k-of-0000n`` (+ dataset_info.json)."""
    from rlds_helpers import encode_example, write_tfrecord

    d = root / name / "1.0.0"
    d.mkdir(parents=True, exist_ok=True)
    (d / "dataset_info.json").write_text(json.dumps({"name": name, "version": "1.0.0"}))
    per = [episodes[i::shards] for i in range(shards)]
    k = 0
    for s, eps in enumerate(per):
        records = []
        for n, instruction in eps:
            records.append(encode_example(rlds_episode_features(n, instruction, seed + k)))
            k += 1
        write_tfrecord(d / f"{name}-train.tfrecord-{s:05d}-of-{shards:05d}", records)
    return root


def make_roboarena(root: Path, sessions: list[dict], *, frames: int = 12) -> Path:
    """``evaluation_sessions/<id>/metadata.yaml`` + ``A_<policy>/`` / ``B_<policy>/`` camera mp4s.

    Each session dict: instruction, a, b (partial_success in [0, 1] or any raw value), optional cameras, video
    overrides ``{"A": bytes}`` to write a broken file.
    """
    import yaml

    for i, s in enumerate(sessions):
        sdir = root / "evaluation_sessions" / f"session_{i:03d}"
        meta = {
            "session_id": sdir.name,
            "language_instruction": s.get("instruction", "put the cup in the sink"),
            "policies": {},
        }
        for side in ("A", "B"):
            name = f"policy_{side.lower()}{i}"
            meta["policies"][side] = {"policy_name": name, "partial_success": s[side.lower()]}
            for cam in s.get("cameras", ("left_shoulder", "right_shoulder", "wrist")):
                path = sdir / f"{side}_{name}" / f"{cam}.mp4"
                override = s.get("video", {}).get(side)
                if override is not None and cam == "left_shoulder":
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(override)
                else:
                    write_video(path, episode_frames(frames, 100 * i + ord(side)), FPS)
        sdir.mkdir(parents=True, exist_ok=True)
        (sdir / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return root
