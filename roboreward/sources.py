"""Source readers: turn robot-video corpora into :class:`~roboreward.types.Episode` objects, one at a time.

Every reader works in two steps so a build never holds more than one episode in memory:

* ``list_<kind>(path, options)`` yields light :class:`EpisodeRef` records (ids, sub-dataset, where to find the
  episode) from metadata only;
* :func:`load_episode` turns one ref into an :class:`Episode` (video path or decoded frames), validating it and
  raising :class:`SourceError` (naming the episode and the field) on bad input.

Readers:

``lerobot``   LeRobot datasets (v3.0: ``meta/info.json``, ``meta/episodes/**.parquet``, ``data/**.parquet``,
              ``videos/<camera>/**.mp4`` with several episodes per file; v2.x ``meta/episodes.jsonl`` also read).
              Every episode is taken as a success (OXE): label 5.
``rlds``      RLDS episodes as exported by TFDS (``<name>/<version>/*.tfrecord-*``, one ``tf.train.Example`` per
              episode with ``steps/observation/<camera>`` encoded frames and ``steps/language_instruction``),
              read with a small TFRecord + protobuf wire-format decoder: no TensorFlow needed; ArrayRecord
              files (``*.array_record-*``) too when the optional ``array-record`` package is installed. Label 5.
``roboarena`` RoboArena dumps: ``evaluation_sessions/<id>/metadata.yaml`` (``language_instruction``,
              ``policies.{A,B}.{policy_name, partial_success in [0, 1]}``) beside ``A_<policy>/`` and
              ``B_<policy>/`` folders of ``left_shoulder.mp4`` / ``right_shoulder.mp4`` / ``wrist.mp4``. Progress
              (0-100) maps to 1-5 by :func:`roboreward.rubric.progress_to_label` with configurable bins. Both
              policies of a session share a split group (same scene and task).
``released``  A folder in the released RoboReward layout (``<split>/metadata.jsonl``), read with
              :func:`roboreward.dataset_io.read_split`, to rebuild or re-split a release. Rows are kept as they are
              (no further clipping); examples of one ``episode_id`` share a split group.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.types import Episode

READERS: tuple[str, ...] = ("lerobot", "rlds", "roboarena", "released")
ROBOARENA_SOURCE = "robo_arena"
ROBOARENA_CAMERAS: tuple[str, ...] = ("left_shoulder", "right_shoulder", "wrist")
#: Default RLDS camera keys, in order of preference (third-person views first).
RLDS_CAMERAS: tuple[str, ...] = ("image", "rgb", "agentview_rgb", "front_rgb", "image_0", "exterior_image_1_left")
RLDS_INSTRUCTION_KEYS: tuple[str, ...] = (
    "steps/language_instruction",
    "steps/observation/natural_language_instruction",
    "steps/observation/language_instruction",
    "episode_metadata/language_instruction",
)
_WRIST_WORDS = ("wrist", "gripper", "hand", "eye_in_hand")

#: Robot of the OXE subsets in the released test split (the Open X-Embodiment dataset table), for ``embodiment``
#: when the source does not name it.
OXE_EMBODIMENTS: dict[str, str] = {
    "austin_sirius": "franka", "berkeley_autolab_ur5": "ur5", "berkeley_fanuc_manipulation": "fanuc_mate",
    "berkeley_mvp": "xarm", "berkeley_rpt": "franka", "bridge": "widowx", "cmu_play_fusion": "franka",
    "dlr_edan_shared_control": "dlr_edan", "droid": "franka", "fractal20220817_data": "google_robot",
    "iamlab_cmu_pickup_insert": "franka", "jaco_play": "jaco_2", "kaist_nonprehensile": "franka",
    "roboturk": "sawyer", "stanford_hydra": "franka", "taco_play": "franka", "tokyo_u_lsmo": "cobotta",
    "ucsd_kitchen": "xarm", "ucsd_pick_and_place": "xarm", "utokyo_pr2_tabletop": "pr2",
    "utokyo_xarm_bimanual": "xarm_bimanual", "viola": "franka",
}  # fmt: skip
_SUBSET_ALIASES = {"utokyo_pr2_tabletop_manipulation": "utokyo_pr2_tabletop", "bridge_data_v2": "bridge"}


def subset_name(name: str) -> str:
    """The release's subset name for a source dataset name (TFDS/OXE or LeRobot port), e.g.
    ``stanford_hydra_dataset_converted_externally_to_rlds`` -> ``stanford_hydra``; other names only slugged."""
    n = slug(name).lower()
    n = n.removesuffix("_converted_externally_to_rlds")
    n = _SUBSET_ALIASES.get(n, n)
    if n.endswith("_dataset") and n.removesuffix("_dataset") in OXE_EMBODIMENTS:
        n = n.removesuffix("_dataset")
    return _SUBSET_ALIASES.get(n, n)


class SourceError(ValueError):
    """A bad episode: the message names the episode and the field (``<episode>: <field>: <problem>``)."""

    def __init__(self, episode_id: str, field_name: str, problem: str) -> None:
        self.episode_id, self.field, self.problem = episode_id, field_name, problem
        super().__init__(f"{episode_id}: {field_name}: {problem}")


@dataclass(frozen=True)
class ReaderOptions:
    """Options shared by the readers (all JSON-serialisable: they are part of the build fingerprint)."""

    camera: str | None = None
    progress_bins: tuple[float, float, float, float] = (20, 40, 60, 80)
    success_label: int = 5


@dataclass(frozen=True)
class EpisodeRef:
    """Where one episode lives; cheap to list, picklable, JSON-able.

    ``source`` is the sub-dataset (the first path part of the written ``file_name``), ``id`` is unique in a build
    and filesystem-safe, ``group`` keeps related episodes in one split.
    """

    reader: str
    source: str
    id: str
    group: str
    locator: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reader": self.reader,
            "source": self.source,
            "id": self.id,
            "group": self.group,
            "locator": self.locator,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpisodeRef:
        return cls(d["reader"], d["source"], d["id"], d["group"], d.get("locator", {}))


def slug(text: str) -> str:
    """A filesystem-safe name (letters, digits, ``_-.``)."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._")
    return out or "x"


def parse_source_spec(spec: str) -> tuple[str, Path | None]:
    """``sample`` | ``<reader>:<path>`` -> (reader, path)."""
    if spec == "sample":
        return "sample", None
    reader, sep, path = spec.partition(":")
    if not sep or reader not in READERS or not path:
        raise ValueError(f"bad --source {spec!r}: use sample or one of {', '.join(f'{r}:PATH' for r in READERS)}")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"--source {spec!r}: {p} does not exist")
    return reader, p


def sample_source_dir() -> Path:
    """The bundled sample source (Meta-World rollouts; see scripts/make_sample_source.py)."""
    from importlib import resources

    return Path(str(resources.files("roboreward").joinpath("data", "sample_source")))


def list_source(spec: str, options: ReaderOptions | None = None) -> Iterator[EpisodeRef]:
    """All episode refs of one ``--source`` spec (``sample`` = the bundled LeRobot + RoboArena sample)."""
    options = options or ReaderOptions()
    reader, path = parse_source_spec(spec)
    if reader == "sample":
        root = sample_source_dir()
        if not (root / "lerobot").is_dir():
            raise FileNotFoundError(f"the bundled sample source is missing from {root}")
        yield from list_lerobot(root / "lerobot", options)
        yield from list_roboarena(root / "roboarena", options)
        return
    assert path is not None
    yield from {"lerobot": list_lerobot, "rlds": list_rlds, "roboarena": list_roboarena, "released": list_released}[
        reader
    ](path, options)


def load_episode(ref: EpisodeRef, options: ReaderOptions | None = None) -> Episode:
    """Load and validate one episode. Raises :class:`SourceError` naming the episode and field."""
    options = options or ReaderOptions()
    loader = {"lerobot": load_lerobot, "rlds": load_rlds, "roboarena": load_roboarena, "released": load_released}
    try:
        episode = loader[ref.reader](ref, options)
    except SourceError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(ref.id, "episode", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(episode.instruction, str) or not episode.instruction.strip():
        raise SourceError(ref.id, "instruction", "missing or empty instruction")
    episode.instruction = " ".join(episode.instruction.split())
    return episode


def sample_per_source(refs: Sequence[EpisodeRef], per_source: int | None, seed: int) -> list[EpisodeRef]:
    """Uniformly sample ``per_source`` episodes from each sub-dataset (all when it has fewer), reproducibly.

    The draw of a sub-dataset depends only on the seed, its name and its own episode ids (not on other sources).
    The result keeps the input order.
    """
    if per_source is None:
        return list(refs)
    if per_source < 1:
        raise ValueError(f"episodes per source must be >= 1, got {per_source}")
    by_source: dict[str, list[int]] = {}
    for i, ref in enumerate(refs):
        by_source.setdefault(ref.source, []).append(i)
    keep: set[int] = set()
    for source, idx in by_source.items():
        if len(idx) <= per_source:
            keep.update(idx)
            continue
        order = sorted(idx, key=lambda i: refs[i].id)
        rng = np.random.default_rng(stable_seed(seed, "sample", source))
        keep.update(order[j] for j in rng.choice(len(order), size=per_source, replace=False))
    return [r for i, r in enumerate(refs) if i in keep]


def stable_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed derived from ``seed`` and strings (stable across processes, unlike ``hash``)."""
    h = hashlib.sha256(json.dumps([int(seed), *parts]).encode()).digest()
    return int.from_bytes(h[:8], "little")


# ----------------------------------------------------------------------------------------------------------------
# LeRobot
# ----------------------------------------------------------------------------------------------------------------


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


def choose_camera(keys: Sequence[str], wanted: str | None, *, episode_id: str) -> str:
    """Pick the camera: ``wanted`` (full key or last name part), else the first non-wrist view."""
    if not keys:
        raise SourceError(episode_id, "camera", "the episode has no camera streams")
    if wanted:
        for k in keys:
            if k == wanted or k.split(".")[-1] == wanted or k.split("/")[-1] == wanted:
                return k
        raise SourceError(episode_id, "camera", f"camera {wanted!r} not found (available: {', '.join(keys)})")
    third_person = [k for k in keys if not any(w in k.lower() for w in _WRIST_WORDS)]
    return (third_person or list(keys))[0]


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
                        "row": {k: _jsonable(v) for k, v in row.items() if not k.startswith("stats/")},
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


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


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
        video = _inside(
            root, template.format(video_key=key, chunk_index=int(chunk), file_index=int(file_index)), ref.id
        )
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
    video = _inside(root, template.format(episode_chunk=ep // chunks_size, video_key=key, episode_index=ep), ref.id)
    if not video.is_file():
        raise SourceError(ref.id, f"camera {key}", f"video file {video} is missing")
    return Episode(video=video, **common)


def _inside(root: Path, relative: str, episode_id: str, field_name: str = "video_path") -> Path:
    """``root / relative``, refusing paths that leave ``root`` (checked on the path text, so symlinked Hub-cache
    files still work)."""
    rel = os.path.normpath(relative)
    if os.path.isabs(rel) or rel == ".." or rel.startswith(".." + os.sep):
        raise SourceError(episode_id, field_name, f"{relative!r} escapes the dataset folder {root}")
    return root / rel


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


# ----------------------------------------------------------------------------------------------------------------
# RoboArena
# ----------------------------------------------------------------------------------------------------------------


def _roboarena_sessions(path: Path) -> list[Path]:
    base = path / "evaluation_sessions" if (path / "evaluation_sessions").is_dir() else path
    sessions = sorted(p.parent for p in base.glob("*/metadata.yaml"))
    if not sessions:
        raise FileNotFoundError(f"{path}: no RoboArena sessions (evaluation_sessions/<id>/metadata.yaml) found")
    return sessions


def list_roboarena(path: Path, options: ReaderOptions) -> Iterator[EpisodeRef]:
    """Two episodes (policies A and B) per evaluation session; the session is the split group."""
    for sdir in _roboarena_sessions(Path(path)):
        sid = slug(sdir.name)
        for side in ("A", "B"):
            eid = f"{sid}_{side}"
            yield EpisodeRef(
                "roboarena", ROBOARENA_SOURCE, eid, f"{ROBOARENA_SOURCE}_{sid}", {"session": str(sdir), "side": side}
            )


def load_roboarena(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    import yaml

    from roboreward.rubric import progress_to_label

    sdir, side = Path(ref.locator["session"]), ref.locator["side"]
    try:
        meta = yaml.safe_load((sdir / "metadata.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise SourceError(ref.id, "metadata.yaml", f"invalid YAML ({exc})") from None
    policy = ((meta.get("policies") or {}).get(side)) or {}
    if not policy:
        raise SourceError(ref.id, f"policies.{side}", "missing from metadata.yaml")
    instruction = meta.get("language_instruction") or policy.get("language_instruction") or ""
    if not isinstance(instruction, str) or not instruction.strip():
        raise SourceError(ref.id, "language_instruction", "missing or empty instruction")
    if "partial_success" in policy:
        raw, scale, fname = policy["partial_success"], 100.0, f"policies.{side}.partial_success"
        lo, hi = 0.0, 1.0
    elif "progress" in policy:
        raw, scale, fname = policy["progress"], 1.0, f"policies.{side}.progress"
        lo, hi = 0.0, 100.0
    else:
        raise SourceError(ref.id, f"policies.{side}.partial_success", "no progress score")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SourceError(ref.id, fname, f"{raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise SourceError(ref.id, fname, f"{raw!r} is outside {lo:g}-{hi:g}")
    progress = value * scale
    label = progress_to_label(progress, tuple(options.progress_bins))
    name = policy.get("policy_name") or ""
    folder = _inside(sdir, f"{side}_{name}", ref.id, f"policies.{side}.policy_name")
    if not folder.is_dir():
        candidates = sorted(p for p in sdir.glob(f"{side}_*") if p.is_dir())
        if not candidates:
            raise SourceError(ref.id, f"{side}_<policy>", f"no video folder for policy {side} in {sdir}")
        folder = candidates[0]
    camera = options.camera or ROBOARENA_CAMERAS[0]
    video = folder / (camera if camera.endswith(".mp4") else f"{camera}.mp4")
    if not video.is_file():
        have = sorted(p.stem for p in folder.glob("*.mp4"))
        raise SourceError(ref.id, f"camera {camera}", f"{video.name} missing in {folder} (available: {have})")
    return Episode(
        id=ref.id,
        source=ROBOARENA_SOURCE,
        instruction=instruction,
        video=video,
        label=label,
        embodiment="franka_droid",
        fps=10.0,
        meta={"session": sdir.name, "policy": name, "side": side, "progress": progress, "camera": camera},
    )


# ----------------------------------------------------------------------------------------------------------------
# Released RoboReward layout
# ----------------------------------------------------------------------------------------------------------------

_CLIP_SUFFIX = re.compile(r"_attempt_\d+_score_\d+$")


def list_released(path: Path, options: ReaderOptions) -> Iterator[EpisodeRef]:
    """Every row of every split; rows of one ``episode_id`` (or one un-clipped file stem) share a group."""
    from roboreward.dataset_io import available_splits, read_split

    splits = available_splits(path)
    if not splits:
        raise FileNotFoundError(f"{path}: no <split>/metadata.jsonl found")
    seen: dict[str, int] = {}
    for split in splits:
        for row in read_split(path, split, check_files=False):
            stem = _CLIP_SUFFIX.sub("", Path(row.data["file_name"]).with_suffix("").as_posix())
            episode = str(row.data.get("episode_id") or stem)
            parts = Path(row.data["file_name"]).with_suffix("").parts
            base = slug("__".join(parts[1:] if len(parts) > 1 else parts))  # the path below the subset folder
            n = seen[base] = seen.get(base, 0) + 1
            eid = base if n == 1 else f"{base}__{n}"
            yield EpisodeRef(
                "released",
                slug(row.subset),
                eid,
                f"{row.subset}/{episode}",
                {"video": str(row.video_path), "row": row.data, "split": split},
            )


def load_released(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    from roboreward.rubric import check_score

    row = ref.locator["row"]
    video = Path(ref.locator["video"])
    if not video.is_file():
        raise SourceError(ref.id, "file_name", f"{row.get('file_name')!r}: video not found at {video}")
    try:
        label = check_score(row.get("reward"), where="reward")
    except ValueError as exc:
        raise SourceError(ref.id, "reward", str(exc)) from None
    return Episode(
        id=ref.id,
        source=ref.source,
        instruction=str(row.get("task") or ""),
        video=video,
        label=label,
        embodiment=str(row.get("embodiment") or ""),
        meta={"released_row": row, "released_split": ref.locator["split"], "no_clip": True},
    )


# ----------------------------------------------------------------------------------------------------------------
# RLDS / TFDS: TFRecord framing and tf.train.Example, decoded by hand (no TensorFlow)
# ----------------------------------------------------------------------------------------------------------------

_CRC_TABLE: list[int] = []


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses: the ``crc32c`` package when installed, else pure Python."""
    try:
        import crc32c as _fast

        return _fast.crc32c(data)
    except ImportError:
        pass
    if not _CRC_TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_offsets(path: Path) -> Iterator[tuple[int, int]]:
    """(offset of the data, length) of each record, reading only the 12-byte headers (length CRC checked)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = 0
        while pos < size:
            header = fh.read(12)
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header at byte {pos}")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{path}: corrupt record header at byte {pos} (length CRC mismatch)")
            if pos + 12 + length + 4 > size:
                raise ValueError(f"{path}: truncated record at byte {pos}")
            yield pos + 12, length
            pos += 12 + length + 4
            fh.seek(pos)


def read_tfrecord(path: Path, offset: int, length: int, *, verify: bool = False) -> bytes:
    """The record at ``offset`` (from :func:`tfrecord_offsets`); ``verify`` also checks the data CRC (slow)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
        (crc,) = struct.unpack("<I", fh.read(4))
    if len(data) != length:
        raise ValueError(f"{path}: truncated record at byte {offset}")
    if verify and masked_crc(data) != crc:
        raise ValueError(f"{path}: corrupt record at byte {offset} (data CRC mismatch)")
    return data


def write_tfrecord(path: Path, records: Sequence[bytes]) -> Path:
    """Write records with TFRecord framing (for fixtures and generated benchmark data)."""
    with open(path, "wb") as fh:
        for data in records:
            header = struct.pack("<Q", len(data))
            fh.write(header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data)))
    return path


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message; length-delimited values as memoryview/bytes."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            ln, pos = _varint(buf, pos)
            if pos + ln > n:
                raise ValueError("truncated length-delimited field")
            val, pos = buf[pos : pos + ln], pos + ln
        elif wire == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield num, wire, val


def parse_example(data: bytes) -> dict[str, list]:
    """Decode a serialized ``tf.train.Example`` into {feature name: list of bytes | float | int}."""
    out: dict[str, list] = {}
    for num, _, features in _fields(data):
        if num != 1:
            continue
        for fnum, _, entry in _fields(features):
            if fnum != 1:
                continue
            key, value = "", []
            for enum, _, ev in _fields(entry):
                if enum == 1:
                    key = bytes(ev).decode("utf-8")
                elif enum == 2:
                    value = _parse_feature(ev)
            out[key] = value
    return out


def _parse_feature(buf: bytes) -> list:
    for kind, _, lst in _fields(buf):
        values: list = []
        for _, wire, v in _fields(lst):
            if kind == 1:
                values.append(bytes(v))
            elif kind == 2:
                values.extend(struct.unpack(f"<{len(v) // 4}f", v) if wire == 2 else struct.unpack("<f", v))
            elif kind == 3:
                if wire == 2:
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        values.append(x - (1 << 64) if x >= 1 << 63 else x)
                else:
                    values.append(v - (1 << 64) if v >= 1 << 63 else v)
        return values
    return []


def _enc_varint(x: int) -> bytes:
    x &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_field(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_example(features: dict[str, list]) -> bytes:
    """Serialize {name: list of bytes | str | float | int} as a ``tf.train.Example`` (inverse of parse_example)."""
    entries = b""
    for key in sorted(features):
        values = list(features[key])
        if values and isinstance(values[0], bytes | str):
            inner = b"".join(_enc_field(1, v.encode() if isinstance(v, str) else v) for v in values)
            feature = _enc_field(1, inner)
        elif values and isinstance(values[0], float):
            feature = _enc_field(2, _enc_field(1, struct.pack(f"<{len(values)}f", *values)))
        else:
            feature = _enc_field(3, _enc_field(1, b"".join(_enc_varint(int(v)) for v in values)))
        entries += _enc_field(1, _enc_field(1, key.encode()) + _enc_field(2, feature))
    return _enc_field(1, entries)


def _rlds_datasets(path: Path) -> list[tuple[str, list[Path]]]:
    """(sub-dataset name, tfrecord files) found under ``path`` (TFDS: <name>/<version>/<name>-<split>.tfrecord-*)."""
    files = sorted(p for pat in ("*.tfrecord*", "*.array_record*") for p in Path(path).rglob(pat) if p.is_file())
    if Path(path).is_file():
        files = [Path(path)]
    if not files:
        raise FileNotFoundError(f"{path}: no TFRecord or ArrayRecord files (*.tfrecord*, *.array_record*) found")
    groups: dict[str, list[Path]] = {}
    for f in files:
        info = f.parent / "dataset_info.json"
        name = ""
        if info.is_file():
            try:
                name = json.loads(info.read_text()).get("name", "")
            except json.JSONDecodeError:
                name = ""
        if not name:
            parent = f.parent
            name = parent.parent.name if re.fullmatch(r"\d+\.\d+\.\d+", parent.name) else parent.name
        groups.setdefault(subset_name(name), []).append(f)
    return sorted(groups.items())


def list_rlds(path: Path, options: ReaderOptions) -> Iterator[EpisodeRef]:
    """One ref per TFRecord record (= one RLDS episode), per TFDS dataset found under ``path``."""
    for name, files in _rlds_datasets(Path(path)):
        n = 0
        for f in files:
            split = "train"
            m = re.search(r"-(train|validation|val|test)\.", f.name)
            if m:
                split = m.group(1)
            if _is_array_record(f):
                for index in range(_array_record_count(f)):
                    eid = f"{name}_{split}_{n:06d}"
                    yield EpisodeRef("rlds", name, eid, eid, {"file": str(f), "index": index})
                    n += 1
                continue
            for offset, length in tfrecord_offsets(f):
                eid = f"{name}_{split}_{n:06d}"
                yield EpisodeRef("rlds", name, eid, eid, {"file": str(f), "offset": offset, "length": length})
                n += 1


def load_rlds(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    from PIL import Image

    f = Path(ref.locator["file"])
    try:
        if "index" in ref.locator:
            data = _array_record_read(f, int(ref.locator["index"]))
        else:
            data = read_tfrecord(f, ref.locator["offset"], ref.locator["length"])
        feats = parse_example(data)
    except ValueError as exc:
        raise SourceError(ref.id, "record", f"cannot parse tf.train.Example ({exc})") from None
    prefix = "steps/observation/"
    cams = sorted(
        k[len(prefix) :]
        for k, v in feats.items()
        if k.startswith(prefix) and v and isinstance(v[0], bytes) and _looks_like_image(v[0])
    )
    if options.camera:
        cam = choose_camera(cams, options.camera, episode_id=ref.id)
    else:
        preferred = [c for c in RLDS_CAMERAS if c in cams]
        cam = preferred[0] if preferred else choose_camera(cams, None, episode_id=ref.id)
    instruction = ""
    for key in RLDS_INSTRUCTION_KEYS:
        for v in feats.get(key, []):
            text = v.decode("utf-8", "replace").strip() if isinstance(v, bytes) else ""
            if text:
                instruction = text
                break
        if instruction:
            break
    if not instruction:
        raise SourceError(ref.id, "language_instruction", "no non-empty language instruction in any step")
    frames = []
    for i, blob in enumerate(feats[prefix + cam]):
        try:
            with Image.open(io.BytesIO(blob)) as img:
                frames.append(np.asarray(img.convert("RGB")))
        except Exception as exc:
            raise SourceError(ref.id, f"steps/observation/{cam}[{i}]", f"cannot decode frame ({exc})") from None
    if not frames:
        raise SourceError(ref.id, f"steps/observation/{cam}", "episode has no frames")
    if len({fr.shape for fr in frames}) != 1:
        raise SourceError(ref.id, f"steps/observation/{cam}", "frames have different sizes")
    meta: dict[str, Any] = {"camera": cam, "file": f.name}
    for key in ("episode_metadata/file_path", "episode_metadata/recording_folderpath"):
        if feats.get(key):
            meta[key.split("/")[-1]] = feats[key][0].decode("utf-8", "replace")
    return Episode(
        id=ref.id,
        source=ref.source,
        instruction=instruction,
        video=np.stack(frames),
        label=options.success_label,
        embodiment=OXE_EMBODIMENTS.get(ref.source, ""),
        fps=10.0,
        meta=meta,
    )


def _is_array_record(path: Path) -> bool:
    return ".array_record" in path.name


def _array_record_module() -> Any:
    try:
        from array_record.python import array_record_module
    except ImportError:
        raise ImportError(
            "reading RLDS ArrayRecord files needs the array-record package: pip install 'roboreward[rlds]'"
        ) from None
    return array_record_module


def _array_record_count(path: Path) -> int:
    reader = _array_record_module().ArrayRecordReader(str(path))
    try:
        return int(reader.num_records())
    finally:
        reader.close()


def _array_record_read(path: Path, index: int) -> bytes:
    reader = _array_record_module().ArrayRecordReader(str(path))
    try:
        return bytes(reader.read([index])[0])
    finally:
        reader.close()


def _looks_like_image(blob: bytes) -> bool:
    return blob[:3] == b"\xff\xd8\xff" or blob[:8] == b"\x89PNG\r\n\x1a\n"
