"""LeRobot datasets: v3.0 (``meta/info.json``, ``meta/episodes/**.parquet``, ``data/**.parquet``,
``videos/<camera>/**.mp4`` with several episodes per file) and v2.x (``meta/episodes.jsonl``, one mp4 per episode).

Every episode is taken as a success (OXE): label ``options.success_label``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from roboreward.sources.common import (
    OXE_EMBODIMENTS,
    EpisodeRef,
    ReaderOptions,
    SourceError,
    choose_camera,
    inside,
    jsonable,
    subset_name,
)
from roboreward.types import Episode


def _lerobot_roots(path: Path) -> list[Path]:
    if (path / "meta" / "info.json").is_file():
        return [path]
    roots = sorted(p.parent.parent for p in path.glob("*/meta/info.json"))
    roots += sorted(p.parent.parent for p in path.glob("*/*/meta/info.json"))
    if not roots:
        raise FileNotFoundError(f"{path}: no LeRobot dataset (meta/info.json) found")
    return roots


def _video_keys(info: dict) -> list[str]:
    return sorted(k for k, v in info.get("features", {}).items() if isinstance(v, dict) and v.get("dtype") == "video")


def list_lerobot(path: Path, options: ReaderOptions) -> Iterator[EpisodeRef]:
    """Episodes of one LeRobot dataset root, or of every dataset found one or two levels below ``path``."""
    for root in _lerobot_roots(Path(path)):
        info = json.loads((root / "meta" / "info.json").read_text())
        name = subset_name(root.name)
        version = str(info.get("codebase_version", "v3.0"))
        base = {"root": str(root), "version": version}
        if version.startswith("v3"):
            import pyarrow.parquet as pq

            files = sorted((root / "meta" / "episodes").glob("**/*.parquet"))
            if not files:
                raise FileNotFoundError(f"{root}: LeRobot v3 dataset without meta/episodes/**/*.parquet")
            for f in files:
                for row in pq.read_table(f).to_pylist():
                    ep = int(row["episode_index"])
                    loc = {
                        **base,
                        "episode_index": ep,
                        "row": {k: jsonable(v) for k, v in row.items() if not k.startswith("stats/")},
                    }
                    yield EpisodeRef("lerobot", name, f"{name}_episode_{ep:06d}", f"{name}_episode_{ep:06d}", loc)
        else:
            for line in (root / "meta" / "episodes.jsonl").read_text().splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                ep = int(row["episode_index"])
                yield EpisodeRef(
                    "lerobot",
                    name,
                    f"{name}_episode_{ep:06d}",
                    f"{name}_episode_{ep:06d}",
                    {**base, "episode_index": ep, "row": row},
                )


def load_lerobot(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    root = Path(ref.locator["root"])
    info = json.loads((root / "meta" / "info.json").read_text())
    row = ref.locator["row"]
    ep = int(ref.locator["episode_index"])
    fps = float(info.get("fps") or 10)
    tasks = row.get("tasks") or []
    if isinstance(tasks, str):
        tasks = [tasks]
    instruction = next((t for t in tasks if isinstance(t, str) and t.strip()), "")
    if not instruction:
        raise SourceError(ref.id, "instruction", "episode has no task text (meta/episodes 'tasks' is empty)")
    keys = _video_keys(info)
    key = choose_camera(keys, options.camera, episode_id=ref.id)
    template = info.get("video_path")
    if not template:
        raise SourceError(ref.id, "video_path", "meta/info.json has no video_path")
    meta = {"lerobot_episode_index": ep, "camera": key, "lerobot_version": ref.locator["version"]}
    common = dict(
        id=ref.id,
        source=ref.source,
        instruction=instruction,
        label=options.success_label,
        embodiment=str(info.get("robot_type") or OXE_EMBODIMENTS.get(ref.source, "")),
        fps=fps,
        meta=meta,
    )
    if ref.locator["version"].startswith("v3"):
        chunk = row.get(f"videos/{key}/chunk_index")
        file_index = row.get(f"videos/{key}/file_index")
        if chunk is None or file_index is None:
            raise SourceError(ref.id, f"camera {key}", "meta/episodes has no video location for this camera")
        video = inside(root, template.format(video_key=key, chunk_index=int(chunk), file_index=int(file_index)), ref.id)
        t0 = float(row.get(f"videos/{key}/from_timestamp") or 0.0)
        t1 = row.get(f"videos/{key}/to_timestamp")
        length = int(row.get("length") or 0)
        if not video.is_file():
            raise SourceError(ref.id, f"camera {key}", f"video file {video} is missing")
        frames = decode_range(video, t0, float(t1) if t1 is not None else None, episode_id=ref.id)
        meta["segment"] = {"file": str(video), "t0": t0, "t1": float(t1) if t1 is not None else None}
        if length and abs(len(frames) - length) > 1:
            raise SourceError(
                ref.id, "video", f"expected {length} frames in [{t0}, {t1}) of {video}, got {len(frames)}"
            )
        return Episode(video=frames, **common)
    chunks_size = int(info.get("chunks_size") or 1000)
    video = inside(root, template.format(episode_chunk=ep // chunks_size, video_key=key, episode_index=ep), ref.id)
    if not video.is_file():
        raise SourceError(ref.id, f"camera {key}", f"video file {video} is missing")
    return Episode(video=video, **common)


def decode_range(path: Path, t0: float, t1: float | None, *, episode_id: str) -> np.ndarray:
    """Decode the frames whose timestamps fall in ``[t0, t1)`` (seeking to the keyframe before ``t0``)."""
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1  # small frames: threads cost more than they give
            if t0 > 0 and stream.time_base:
                container.seek(int(t0 / stream.time_base), stream=stream, backward=True, any_frame=False)
            eps = 1e-3
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                if t < t0 - eps:
                    continue
                if t1 is not None and t >= t1 - eps:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except Exception as exc:
        raise SourceError(episode_id, "video", f"cannot decode {path} ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise SourceError(episode_id, "video", f"no frames in [{t0}, {t1}) of {path}")
    return np.stack(frames)
