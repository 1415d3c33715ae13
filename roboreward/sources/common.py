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
