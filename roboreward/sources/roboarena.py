"""RoboArena dumps: ``evaluation_sessions/<id>/metadata.yaml`` (``language_instruction``,
``policies.{A,B}.{policy_name, partial_success in [0, 1]}``) beside ``A_<policy>/`` and ``B_<policy>/`` folders of
``left_shoulder.mp4`` / ``right_shoulder.mp4`` / ``wrist.mp4``.

Progress (0-100) maps to 1-5 by :func:`roboreward.rubric.progress_to_label` with configurable bins. Both policies
of a session share a split group (same scene and task).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from roboreward.sources.common import EpisodeRef, ReaderOptions, SourceError, inside, slug
from roboreward.types import Episode

ROBOARENA_SOURCE = "robo_arena"
ROBOARENA_CAMERAS: tuple[str, ...] = ("left_shoulder", "right_shoulder", "wrist")


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
    folder = inside(sdir, f"{side}_{name}", ref.id, f"policies.{side}.policy_name")
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
