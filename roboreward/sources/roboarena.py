"""RoboArena dumps: ``evaluation_sessions/<id>/metadata.yaml`` (``language_instruction``,
``policies.<side>.{policy_name, partial_success in [0, 1]}``) beside one ``<side>_<policy>/`` video folder per
policy (``A``, ``B``, and ``C`` when a session ran a third policy).

Both dump layouts are read: camera files named ``left_shoulder.mp4`` / ``right_shoulder.mp4`` / ``wrist.mp4``,
and the 2025 dumps' per-episode names ``<policy>_<timestamp>_video_left.mp4`` / ``_right.mp4`` / ``_wrist.mp4``
(found by the ``*_left.mp4`` pattern peers' loaders use). Progress (0-100) maps to 1-5 by
:func:`roboreward.rubric.progress_to_label` with configurable bins. Every policy of a session shares a split group
(same scene and task). ``metadata.yaml`` is parsed with a safe loader that refuses more than
:data:`MAX_YAML_ALIASES` aliases (a "billion laughs" file) and files over :data:`MAX_YAML_BYTES`; scores must be
numbers (``partial_success: yes`` is refused, not read as 1.0).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from roboreward.sources.common import EpisodeRef, ListingProblem, ReaderOptions, SourceError, inside, quote, slug
from roboreward.types import Episode

ROBOARENA_SOURCE = "robo_arena"
ROBOARENA_CAMERAS: tuple[str, ...] = ("left_shoulder", "right_shoulder", "wrist")
#: The file-name suffix of each camera in the 2025 dumps (``..._video_left.mp4``).
CAMERA_SUFFIXES: dict[str, str] = {"left_shoulder": "left", "right_shoulder": "right", "wrist": "wrist"}
MAX_YAML_ALIASES = 32
MAX_YAML_BYTES = 1 << 20
_SIDE = re.compile(r"^([A-Z])_.+")


def _roboarena_sessions(path: Path) -> list[Path]:
    base = path / "evaluation_sessions" if (path / "evaluation_sessions").is_dir() else path
    sessions = sorted(p.parent for p in base.glob("*/metadata.yaml"))
    if not sessions:
        raise FileNotFoundError(f"{path}: no RoboArena sessions (evaluation_sessions/<id>/metadata.yaml) found")
    return sessions


class BoundedLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses more than :data:`MAX_YAML_ALIASES` aliases (alias expansion)."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} YAML aliases (refused: alias expansion)")
        return super().compose_node(parent, index)


def load_metadata(path: Path) -> Any:
    """Parse a session's ``metadata.yaml`` safely: bounded size and alias count; errors quote little."""
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ValueError(f"{path.stat().st_size} bytes, more than the {MAX_YAML_BYTES} a metadata file may have")
    loader = BoundedLoader(path.read_text(encoding="utf-8"))
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML ({quote(str(exc))})") from None
    finally:
        loader.dispose()


def _sides(sdir: Path) -> list[str]:
    """The policies of a session: its ``<side>_*`` folders and its metadata's ``policies`` keys."""
    sides = {m.group(1) for p in sdir.iterdir() if p.is_dir() and (m := _SIDE.match(p.name))}
    try:
        meta = load_metadata(sdir / "metadata.yaml")
        policies = meta.get("policies") if isinstance(meta, dict) else None
        if isinstance(policies, dict):
            sides |= {k for k in policies if isinstance(k, str) and re.fullmatch(r"[A-Z]", k)}
    except (OSError, ValueError, UnicodeDecodeError):
        pass  # load_roboarena reports it per episode
    return sorted(sides) or ["A", "B"]


def list_roboarena(
    path: Path, options: ReaderOptions, problems: list[ListingProblem] | None = None
) -> Iterator[EpisodeRef]:
    """One episode per policy (A, B, C, ...) of each evaluation session; the session is the split group.

    Session folders whose names collide once slugged (``s 1`` and ``s_1``): those whose name is not its own
    slug get a short hash of the real name (``s_1_<hash>``), so every episode id stays unique and stable.
    """
    sessions = _roboarena_sessions(Path(path))
    slugs = [slug(sdir.name) for sdir in sessions]
    for sdir, sid in zip(sessions, slugs, strict=True):
        if slugs.count(sid) > 1 and sdir.name != sid:
            sid = f"{sid}_{hashlib.sha256(sdir.name.encode()).hexdigest()[:8]}"
        for side in _sides(sdir):
            eid = f"{sid}_{side}"
            yield EpisodeRef(
                "roboarena", ROBOARENA_SOURCE, eid, f"{ROBOARENA_SOURCE}_{sid}", {"session": str(sdir), "side": side}
            )


def _score(policy: dict, side: str, episode_id: str) -> float:
    """The policy's progress on 0-100 from ``partial_success`` (0-1) or ``progress`` (0-100): numbers only."""
    if "partial_success" in policy:
        raw, scale, fname, hi = policy["partial_success"], 100.0, f"policies.{side}.partial_success", 1.0
    elif "progress" in policy:
        raw, scale, fname, hi = policy["progress"], 1.0, f"policies.{side}.progress", 100.0
    else:
        raise SourceError(episode_id, f"policies.{side}.partial_success", "no progress score")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SourceError(episode_id, fname, f"{quote(raw)} is not a number")
    if not 0.0 <= raw <= hi:
        raise SourceError(episode_id, fname, f"{quote(raw)} is outside 0-{hi:g}")
    return float(raw) * scale


def find_video(folder: Path, camera: str, episode_id: str) -> Path:
    """The camera's video in a policy folder: ``<camera>.mp4``, else the one ``*_<suffix>.mp4`` (2025 dumps)."""
    name = camera if camera.endswith(".mp4") else f"{camera}.mp4"
    if (folder / name).is_file():
        return folder / name
    suffix = CAMERA_SUFFIXES.get(camera, camera.removesuffix(".mp4"))
    matches = sorted(p for p in folder.glob(f"*_{suffix}.mp4") if p.is_file())
    if len(matches) == 1:
        return matches[0]
    have = sorted(p.name for p in folder.glob("*.mp4"))
    if matches:
        raise SourceError(episode_id, f"camera {camera}", f"several *_{suffix}.mp4 in {folder}: {have}")
    problem = f"{name} (or *_{suffix}.mp4) missing in {folder} (available: {have})"
    raise SourceError(episode_id, f"camera {camera}", problem)


def load_roboarena(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    from roboreward.rubric import progress_to_label

    sdir, side = Path(ref.locator["session"]), ref.locator["side"]
    try:
        meta = load_metadata(sdir / "metadata.yaml") or {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(ref.id, "metadata.yaml", quote(str(exc), 300)) from None
    if not isinstance(meta, dict):
        raise SourceError(ref.id, "metadata.yaml", f"expected a mapping, got {type(meta).__name__}")
    policies = meta.get("policies") or {}
    policy = policies.get(side) if isinstance(policies, dict) else None
    if not policy or not isinstance(policy, dict):
        raise SourceError(ref.id, f"policies.{side}", "missing from metadata.yaml")
    instruction = meta.get("language_instruction") or policy.get("language_instruction") or ""
    if not isinstance(instruction, str) or not instruction.strip():
        raise SourceError(ref.id, "language_instruction", "missing or empty instruction")
    progress = _score(policy, side, ref.id)
    label = progress_to_label(progress, tuple(options.progress_bins))
    name = policy.get("policy_name") or ""
    if not isinstance(name, str):
        raise SourceError(ref.id, f"policies.{side}.policy_name", f"{quote(name)} is not a string")
    folder = inside(sdir, f"{side}_{name}", ref.id, f"policies.{side}.policy_name")
    if not folder.is_dir():
        candidates = sorted(p for p in sdir.glob(f"{side}_*") if p.is_dir())
        if not candidates:
            raise SourceError(ref.id, f"{side}_<policy>", f"no video folder for policy {side} in {sdir}")
        folder = candidates[0]
    camera = options.camera or ROBOARENA_CAMERAS[0]
    video = find_video(folder, camera, ref.id)
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
