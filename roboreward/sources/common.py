"""What the readers share: the episode reference, the reader options, the error type, naming and camera choice."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


#: The most characters of an input value an error message quotes (a hostile file cannot grow a report).
QUOTE_LIMIT = 200


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters (with the full length said), for error messages."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class SourceError(ValueError):
    """A bad episode: the message names the episode and the field (``<episode>: <field>: <problem>``)."""

    def __init__(self, episode_id: str, field_name: str, problem: str) -> None:
        self.episode_id, self.field, self.problem = episode_id, field_name, problem
        super().__init__(f"{episode_id}: {field_name}: {problem}")


@dataclass(frozen=True)
class ListingProblem:
    """A dataset, file or episode that could not be listed: named, skipped and reported, the rest listed."""

    source: str  # the sub-dataset (or the source folder when the name is not known yet)
    where: str  # the episode id or the file
    field: str
    error: str

    def as_skipped(self) -> dict[str, Any]:
        """The build report's ``skipped`` entry shape."""
        return {"episode": self.where, "source": self.source, "split": None, "field": self.field, "error": self.error}


@dataclass(frozen=True)
class ReaderOptions:
    """Options shared by the readers (all JSON-serialisable: they are part of the build fingerprint).

    ``camera``: camera key (full key or last name part); default: the first non-wrist, non-depth view.
    ``source_fps``: frames per second per sub-dataset name, over the RLDS table of known OXE control rates
    (:data:`roboreward.sources.rlds.RLDS_FPS`); LeRobot and RoboArena files carry their own rate.
    ``instruction_key``: the RLDS feature holding the instruction (e.g. ``steps/language_instruction_2``);
    default: the known keys in order. ``source_split``: read only this split of the source (an RLDS file's
    ``<name>-<split>.tfrecord`` split, a LeRobot ``info.json`` ``splits`` entry). ``source_version``: the RLDS
    version folder to read (default: the newest of each dataset). ``decode_segments``: False gives a LeRobot
    v3 episode's video as a :class:`~roboreward.types.VideoSegment` of its shared mp4, undecoded, and an RLDS
    episode's as :class:`~roboreward.types.EncodedFrames` (the builder streams both), instead of its frames.
    """

    camera: str | None = None
    progress_bins: tuple[float, float, float, float] = (20, 40, 60, 80)
    success_label: int = 5
    source_fps: dict[str, float] = field(default_factory=dict)
    instruction_key: str | None = None
    source_split: str | None = None
    source_version: str | None = None
    decode_segments: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "progress_bins", tuple(float(b) for b in self.progress_bins))
        fps = {}
        for name, value in dict(self.source_fps).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
                raise ValueError(f"source fps for {name!r} must be a number in (0, 1000], got {quote(value)}")
            fps[str(name)] = float(value)
        object.__setattr__(self, "source_fps", fps)


def parse_source_fps(specs: Sequence[str] | None) -> dict[str, float]:
    """``["bridge=5", "taco_play=15"]`` (the ``--source-fps`` CLI values) -> ``{"bridge": 5.0, ...}``."""
    out: dict[str, float] = {}
    for spec in specs or ():
        name, sep, value = str(spec).partition("=")
        try:
            out[subset_name(name.strip())] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"bad --source-fps {spec!r}: use NAME=FPS, e.g. bridge=5")
    return out


def read_json(path: Path, *, kind: type = dict) -> Any:
    """Parse a metadata JSON file; the error names the file and what is wrong (not a bare decoder message)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, kind):
        raise ValueError(f"{path}: expected a JSON {kind.__name__}, got {type(data).__name__}")
    return data


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


def stable_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed derived from ``seed`` and strings (stable across processes, unlike ``hash``)."""
    h = hashlib.sha256(json.dumps([int(seed), *parts]).encode()).digest()
    return int.from_bytes(h[:8], "little")


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


def jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    return v


def inside(root: Path, relative: str, episode_id: str, field_name: str = "video_path") -> Path:
    """``root / relative``, refusing paths that leave ``root`` (checked on the path text, so symlinked Hub-cache
    files still work)."""
    rel = os.path.normpath(relative)
    if os.path.isabs(rel) or rel == ".." or rel.startswith(".." + os.sep):
        raise SourceError(episode_id, field_name, f"{relative!r} escapes the dataset folder {root}")
    return root / rel


def skip(
    problems: list[ListingProblem] | None, problem: ListingProblem, exc_type: type[Exception] = ValueError
) -> None:
    """Record a listing problem and go on, or raise it when the caller collects none (``problems is None``)."""
    if problems is None:
        raise exc_type(f"{problem.where}: {problem.field}: {problem.error}")
    problems.append(problem)
