"""LeRobot datasets: v3.0 (``meta/info.json``, ``meta/episodes/**.parquet``, ``data/**.parquet``,
``videos/<camera>/**.mp4`` with several episodes per file) and v2.x (``meta/episodes.jsonl``, one mp4 per episode).

Every episode is taken as a success (OXE): label ``options.success_label``. Details that follow LeRobot's own
reader:

* frames: an episode's frames are the ``length`` frames from ``from_timestamp`` on (LeRobot reads
  ``from_timestamp + i / fps``), so a ``to_timestamp`` that marks the last frame rather than the end keeps it;
* cameras: ``dtype: video`` streams and ``dtype: image`` columns (PNG bytes inside the data parquet) both count;
  a stream with ``video.is_depth_map`` is never chosen;
* instruction: an episode with several tasks (LeRobot stores them as ``list(set(...))``, in no fixed order)
  gets them in the order its frames first use them (``task_index`` of the data parquet; sorted when the
  frames cannot tell), joined with ``"; "``;
* subset name: the dataset folder's name, or the repository's name for a Hub cache snapshot
  (``datasets--<org>--<name>/snapshots/<sha>`` -> ``<name>``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.sources import common
from roboreward.sources.common import EpisodeRef, ListingProblem, ReaderOptions, SourceError
from roboreward.types import EncodedFrames, Episode, VideoSegment

#: How an episode's several tasks are joined into one instruction.
TASK_JOINER = "; "


def dataset_name(root: Path) -> str:
    """The subset name of a dataset root: its folder name, or the Hub repository name of a cache snapshot."""
    root = Path(root)
    if root.parent.name == "snapshots" and root.parent.parent.name.startswith("datasets--"):
        return common.subset_name(root.parent.parent.name.split("--")[-1])
    return common.subset_name(root.name)


def _hub_snapshot(roots: list[Path]) -> Path:
    """Of several snapshots of one Hub cache repository: the one ``refs/main`` names, else the newest."""
    repo = roots[0].parent.parent
    main = repo / "refs" / "main"
    if main.is_file():
        sha = main.read_text().strip()
        for r in roots:
            if r.name == sha:
                return r
    return max(roots, key=lambda r: ((r / "meta" / "info.json").stat().st_mtime, r.name))


def _lerobot_roots(path: Path) -> list[Path]:
    if (path / "meta" / "info.json").is_file():
        return [path]
    found = sorted(p.parent.parent for p in path.glob("*/meta/info.json"))
    found += sorted(p.parent.parent for p in path.glob("*/*/meta/info.json"))
    found += sorted(p.parent.parent for p in path.glob("*/snapshots/*/meta/info.json"))
    if not found:
        raise FileNotFoundError(f"{path}: no LeRobot dataset (meta/info.json) found")
    snapshots: dict[Path, list[Path]] = {}
    roots: list[Path] = []
    for r in dict.fromkeys(found):
        if r.parent.name == "snapshots":
            snapshots.setdefault(r.parent.parent, []).append(r)
        else:
            roots.append(r)
    return roots + [_hub_snapshot(v) for _, v in sorted(snapshots.items())]


def _is_depth(spec: dict) -> bool:
    info = spec.get("info") or spec.get("video_info") or {}
    return isinstance(info, dict) and bool(info.get("video.is_depth_map"))


def camera_keys(info: dict) -> dict[str, str]:
    """Camera feature -> dtype (``video`` or ``image``), sorted; depth-map streams left out."""
    feats = info.get("features") or {}
    if not isinstance(feats, dict):
        return {}
    return {
        k: v["dtype"]
        for k, v in sorted(feats.items())
        if isinstance(v, dict) and v.get("dtype") in ("video", "image") and not _is_depth(v)
    }


def _episode_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer) or value != int(value) or value < 0:
        raise ValueError(f"episode_index {common.quote(value)} is not a non-negative integer")
    return int(value)


def _split_range(info: dict, split: str, where: Path) -> range:
    splits = info.get("splits") or {}
    spec = splits.get(split) if isinstance(splits, dict) else None
    if spec is None:
        have = ", ".join(sorted(splits)) if isinstance(splits, dict) else ""
        raise ValueError(f"{where}: split {split!r} not in info.json splits (available: {have or 'none'})")
    lo, _, hi = str(spec).partition(":")
    try:
        return range(int(lo), int(hi))
    except ValueError:
        raise ValueError(f"{where}: split {split!r} is {common.quote(spec)}, not START:END") from None


def _rows(root: Path, version: str) -> Iterator[tuple[str, Any]]:
    """(where, raw row) of each episode in the dataset's episode metadata."""
    if version.startswith("v3"):
        import pyarrow.parquet as pq

        files = sorted((root / "meta" / "episodes").glob("**/*.parquet"))
        if not files:
            raise FileNotFoundError(f"{root}: LeRobot v3 dataset without meta/episodes/**/*.parquet")
        for f in files:
            for i, row in enumerate(pq.read_table(f).to_pylist()):
                yield f"{f}:{i}", {k: common.jsonable(v) for k, v in row.items() if not k.startswith("stats/")}
        return
    path = root / "meta" / "episodes.jsonl"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{n}", json.loads(line)
        except json.JSONDecodeError as exc:
            yield f"{path}:{n}", ValueError(f"invalid JSON ({exc.msg})")


def list_lerobot(
    path: Path, options: ReaderOptions, problems: list[ListingProblem] | None = None
) -> Iterator[EpisodeRef]:
    """Episodes of one LeRobot dataset root, or of every dataset found one or two levels below ``path``.

    A dataset or episode whose metadata cannot be read is recorded in ``problems`` and skipped (raised when
    ``problems`` is None).
    """
    for root in _lerobot_roots(Path(path)):
        name = dataset_name(root)
        try:
            info = common.read_json(root / "meta" / "info.json")
            version = str(info.get("codebase_version", "v3.0"))
            if not version.startswith(("v2", "v3")):
                raise ValueError(f"{root / 'meta' / 'info.json'}: codebase_version {common.quote(version)} is not read")
            split = options.source_split
            keep = _split_range(info, split, root / "meta" / "info.json") if split else None
            rows = list(_rows(root, version))
        except (OSError, ValueError) as exc:
            common.skip(problems, ListingProblem(name, str(root), "meta", str(exc)), type(exc))
            continue
        base = {"root": str(root), "version": version}
        seen: set[int] = set()
        for where, row in rows:
            try:
                if isinstance(row, Exception):
                    raise row
                if not isinstance(row, dict):
                    raise ValueError(f"expected an object, got {type(row).__name__}")
                ep = _episode_index(row.get("episode_index"))
                if ep in seen:
                    raise ValueError(f"episode_index {ep} is listed twice")
            except ValueError as exc:
                common.skip(problems, ListingProblem(name, where, "meta/episodes", str(exc)))
                continue
            seen.add(ep)
            if keep is not None and ep not in keep:
                continue
            eid = f"{name}_episode_{ep:06d}"
            yield EpisodeRef("lerobot", name, eid, eid, {**base, "episode_index": ep, "row": row})


def _tasks_table(root: Path) -> dict[int, str]:
    """task_index -> task text (v3 ``meta/tasks.parquet``, v2 ``meta/tasks.jsonl``)."""
    if (root / "meta" / "tasks.parquet").is_file():
        import pyarrow.parquet as pq

        table = pq.read_table(root / "meta" / "tasks.parquet").to_pandas()
        col = "task" if "task" in table.columns else None
        return {int(r.task_index): str(getattr(r, col) if col else idx) for idx, r in table.iterrows()}
    out = {}
    for line in (root / "meta" / "tasks.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out[int(d["task_index"])] = str(d["task"])
    return out


def _data_file(root: Path, info: dict, row: dict, ep: int, episode_id: str) -> Path:
    template = info.get("data_path")
    if not template:
        raise SourceError(episode_id, "data_path", "meta/info.json has no data_path")
    if "data/chunk_index" in row:
        rel = template.format(chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"]))
    else:
        chunks_size = int(info.get("chunks_size") or 1000)
        rel = template.format(episode_chunk=ep // chunks_size, episode_index=ep)
    return common.inside(root, rel, episode_id, "data_path")


def _read_data(root: Path, info: dict, row: dict, ep: int, columns: list[str], episode_id: str) -> Any:
    import pyarrow.parquet as pq

    path = _data_file(root, info, row, ep, episode_id)
    if not path.is_file():
        raise SourceError(episode_id, "data_path", f"data file {path} is missing")
    columns = ["episode_index", "frame_index", *columns]
    table = pq.read_table(path, columns=columns, filters=[("episode_index", "==", ep)])
    return table.sort_by("frame_index")


def instruction_of(root: Path, info: dict, row: dict, ep: int, episode_id: str) -> str:
    """The episode's instruction: its task, or its tasks in the order its frames use them, joined."""
    tasks = row.get("tasks") or []
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = list(dict.fromkeys(t.strip() for t in tasks if isinstance(t, str) and t.strip()))
    if len(tasks) <= 1:
        return tasks[0] if tasks else ""
    try:
        names = _tasks_table(root)
        used = _read_data(root, info, row, ep, ["task_index"], episode_id).column("task_index").to_pylist()
        order = [names[i] for i in dict.fromkeys(used)]
        if sorted(order) != sorted(tasks):
            raise ValueError("frames and tasks disagree")
    except (OSError, ValueError, KeyError, SourceError):
        order = sorted(tasks)
    return TASK_JOINER.join(order)


def _image_frames(
    root: Path, info: dict, row: dict, ep: int, key: str, episode_id: str, options: ReaderOptions
) -> np.ndarray | EncodedFrames:
    """The frames of a ``dtype: image`` camera: PNG/JPEG bytes in the episode's data parquet rows, decoded, or with
    ``options.decode_segments`` off still encoded (the builder streams them, one frame at a time)."""
    cells = _read_data(root, info, row, ep, [key], episode_id).column(key).to_pylist()
    blobs = []
    for cell in cells:
        blob = cell.get("bytes") if isinstance(cell, dict) else cell
        if not blob and isinstance(cell, dict) and cell.get("path"):
            blob = common.inside(root, str(cell["path"]), episode_id, key).read_bytes()
        blobs.append(blob or b"")
    frames = EncodedFrames(tuple(blobs), episode_id, key)
    if not options.decode_segments:
        frames.check_ends()
        return frames
    if not blobs:
        raise SourceError(episode_id, key, "episode has no frames in the data parquet")
    return np.stack(list(frames))


def _finite(value: Any) -> float | None:
    """A float, or None for a missing / NaN / infinite value."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def load_lerobot(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    root = Path(ref.locator["root"])
    info = common.read_json(root / "meta" / "info.json")
    row = ref.locator["row"]
    ep = int(ref.locator["episode_index"])
    fps = _finite(info.get("fps")) or 10.0
    instruction = instruction_of(root, info, row, ep, ref.id)
    if not instruction:
        raise SourceError(ref.id, "instruction", "episode has no task text (meta/episodes 'tasks' is empty)")
    cams = camera_keys(info)
    feats = info.get("features") if isinstance(info.get("features"), dict) else {}
    depth = [k for k, v in feats.items() if isinstance(v, dict) and _is_depth(v)]
    if options.camera in depth or options.camera in {k.split(".")[-1] for k in depth}:
        raise SourceError(ref.id, "camera", f"camera {options.camera!r} is a depth map (video.is_depth_map)")
    key = common.choose_camera(list(cams), options.camera, episode_id=ref.id)
    meta: dict[str, Any] = {"lerobot_episode_index": ep, "camera": key, "lerobot_version": ref.locator["version"]}
    fields = dict(
        id=ref.id,
        source=ref.source,
        instruction=instruction,
        label=options.success_label,
        embodiment=str(info.get("robot_type") or common.OXE_EMBODIMENTS.get(ref.source, "")),
        fps=fps,
        meta=meta,
    )
    if cams[key] == "image":
        return Episode(video=_image_frames(root, info, row, ep, key, ref.id, options), **fields)
    template = info.get("video_path")
    if not template:
        raise SourceError(ref.id, "video_path", "meta/info.json has no video_path")
    if ref.locator["version"].startswith("v3"):
        chunk = row.get(f"videos/{key}/chunk_index")
        file_index = row.get(f"videos/{key}/file_index")
        if chunk is None or file_index is None:
            raise SourceError(ref.id, f"camera {key}", "meta/episodes has no video location for this camera")
        rel = template.format(video_key=key, chunk_index=int(chunk), file_index=int(file_index))
        video = common.inside(root, rel, ref.id)
        raw_t0 = row.get(f"videos/{key}/from_timestamp")
        t0 = 0.0 if raw_t0 is None else _finite(raw_t0)
        if t0 is None or t0 < 0:
            problem = f"{common.quote(raw_t0)} is not a time in seconds"
            raise SourceError(ref.id, f"videos/{key}/from_timestamp", problem)
        t1 = _finite(row.get(f"videos/{key}/to_timestamp"))
        length = int(_finite(row.get("length")) or 0)
        if not length and t1 is None:
            raise SourceError(ref.id, f"videos/{key}/to_timestamp", "neither a to_timestamp nor a length is given")
        if not video.is_file():
            raise SourceError(ref.id, f"camera {key}", f"video file {video} is missing")
        if not options.decode_segments:
            return Episode(video=VideoSegment(video, t0, t1, length or None), **fields)
        frames = decode_range(video, t0, t1, num_frames=length or None, episode_id=ref.id)
        if length and abs(len(frames) - length) > 1:
            raise SourceError(ref.id, "video", f"expected {length} frames from {t0}s of {video}, got {len(frames)}")
        meta["segment"] = {"file": str(video), "t0": t0, "t1": t0 + len(frames) / fps}
        return Episode(video=frames, **fields)
    chunks_size = int(info.get("chunks_size") or 1000)
    rel = template.format(episode_chunk=ep // chunks_size, video_key=key, episode_index=ep)
    video = common.inside(root, rel, ref.id)
    if not video.is_file():
        raise SourceError(ref.id, f"camera {key}", f"video file {video} is missing")
    return Episode(video=video, **fields)


def decode_range(
    path: Path, t0: float, t1: float | None, *, num_frames: int | None = None, episode_id: str
) -> np.ndarray:
    """Decode ``num_frames`` frames from time ``t0`` on (LeRobot's ``t0 + i / fps``), or without a count the
    frames whose timestamps fall in ``[t0, t1)``; seeks to the keyframe before ``t0``."""
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
                if num_frames is None and t1 is not None and t >= t1 - eps:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
                if num_frames is not None and len(frames) >= num_frames:
                    break
    except Exception as exc:
        raise SourceError(episode_id, "video", f"cannot decode {path} ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise SourceError(episode_id, "video", f"no frames in [{t0}, {t1}) of {path}")
    return np.stack(frames)
