"""Read a RoboReward dataset in the released layout (``teetone/RoboReward``), local or on the Hub.

Layout (datasets' ``videofolder`` convention)::

    <root>/README.md                    dataset card with YAML ``configs``
    <root>/<split>/metadata.jsonl       one JSON row per example: file_name, task, reward, ...
    <root>/<split>/<source>/<...>.mp4   file_name is relative to the split folder

The first part of ``file_name`` names the source subset (``robo_arena``, ``bridge``, ...). Every stage that
consumes a dataset (training, evaluation, the demo examples) reads it through :func:`read_split`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from roboreward.rubric import check_score
from roboreward.types import Example

DEFAULT_REPO = "teetone/RoboReward"
REQUIRED_COLUMNS: tuple[str, ...] = ("file_name", "task", "reward")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: The folder each split is written to: the release's names (``val/``, which peers' loaders look for).
SPLIT_FOLDERS: dict[str, str] = {"train": "train", "validation": "val", "test": "test"}
#: Folder names accepted for each split (canonical name first).
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("val", "validation", "valid"),
    "test": ("test",),
}


class DatasetFormatError(ValueError):
    """A dataset row or folder that does not follow the layout (the message names file, line and field)."""


def subset_of(file_name: str) -> str:
    """The source subset named by the first path part of ``file_name`` (:attr:`Example.subset`)."""
    return Example(file_name=file_name, task="", reward=1).subset


def safe_join(root: Path, relative: str, *, where: str = "file_name") -> Path:
    """Join ``relative`` under ``root``, refusing absolute paths and any escape (``../``, symlinks)."""
    if not relative or not isinstance(relative, str):
        raise DatasetFormatError(f"{where}: empty or non-string path {relative!r}")
    if os.path.isabs(relative) or relative.startswith(("/", "\\")):
        raise DatasetFormatError(f"{where}: absolute path {relative!r} is not allowed")
    norm = os.path.normpath(relative)
    if norm == ".." or norm.startswith(".." + os.sep):
        raise DatasetFormatError(f"{where}: path {relative!r} escapes the dataset folder {root}")
    root_resolved = root.resolve()
    candidate = (root_resolved / relative).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        if _hub_blob(root_resolved, candidate):  # huggingface_hub's cache: snapshots/<rev>/<file> -> blobs/<hash>
            return root_resolved / norm
        raise DatasetFormatError(f"{where}: path {relative!r} escapes the dataset folder {root}")
    return candidate


def _hub_blob(root: Path, target: Path) -> bool:
    """Whether ``target`` is a blob of the Hub-cache repo whose snapshot folder holds ``root``."""
    for folder in (root, *root.parents):
        if folder.parent.name == "snapshots":
            return target.parent == folder.parent.parent / "blobs"
    return False


def resolve_dataset(
    path_or_repo: str | os.PathLike, *, splits: tuple[str, ...] | None = None, revision: str | None = None
) -> Path:
    """A local folder as is, or a Hub dataset repo id downloaded with ``snapshot_download``."""
    p = Path(path_or_repo)
    if p.exists():
        if not p.is_dir():
            raise DatasetFormatError(f"{p}: a dataset must be a folder")
        return p
    from huggingface_hub import snapshot_download

    patterns = ["README.md"]
    for s in splits or SPLITS:
        patterns += [f"{alias}/**" for alias in SPLIT_ALIASES.get(s, (s,))]
    return Path(snapshot_download(str(path_or_repo), repo_type="dataset", revision=revision, allow_patterns=patterns))


def split_folder(split: str) -> str:
    """The folder ``split`` is written to (:data:`SPLIT_FOLDERS`; other names as they are)."""
    return SPLIT_FOLDERS.get(split, split)


def split_dir(root: str | os.PathLike, split: str) -> Path:
    """The folder of ``split`` under ``root`` (accepting the aliases of :data:`SPLIT_ALIASES`)."""
    root = Path(root)
    for name in SPLIT_ALIASES.get(split, (split,)):
        if (root / name / "metadata.jsonl").is_file():
            return root / name
    found = sorted(d.name for d in root.iterdir() if (d / "metadata.jsonl").is_file()) if root.is_dir() else []
    raise DatasetFormatError(f"{root}: no split {split!r} (no {split}/metadata.jsonl); splits found: {found}")


def available_splits(root: str | os.PathLike) -> list[str]:
    """Canonical names of the splits present under ``root``."""
    out = []
    for split in SPLITS:
        try:
            split_dir(root, split)
            out.append(split)
        except DatasetFormatError:
            pass
    return out


def iter_metadata(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) of a metadata.jsonl, with a clear error on malformed JSON."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DatasetFormatError(f"{path}:{lineno}: a row must be a JSON object")
            yield lineno, row


def read_split(
    root: str | os.PathLike, split: str = "test", *, check_files: bool = True, limit: int | None = None
) -> list[Example]:
    """All rows of ``split`` as :class:`~roboreward.types.Example` (``video_path`` set), validated: required
    columns, reward in 1..5, scalar column values, video inside the split folder."""
    sdir = split_dir(Path(root), split)
    meta = sdir / "metadata.jsonl"
    rows: list[Example] = []
    for lineno, row in iter_metadata(meta):
        where = f"{meta}:{lineno}"
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise DatasetFormatError(f"{where}: missing required column(s) {missing}")
        try:
            reward = check_score(row["reward"], where=f"{where}: reward")
        except ValueError as exc:
            raise DatasetFormatError(str(exc)) from None
        task = row["task"]
        if not isinstance(task, str) or not task.strip():
            raise DatasetFormatError(f"{where}: task is empty")
        video = safe_join(sdir, row["file_name"], where=f"{where}: file_name")
        if check_files and not video.is_file():
            raise DatasetFormatError(f"{where}: file_name {row['file_name']!r} not found under {sdir}")
        try:
            rows.append(Example.from_row({**row, "reward": reward}, video_path=video, where=where))
        except ValueError as exc:
            raise DatasetFormatError(str(exc)) from None
        if limit is not None and len(rows) >= limit:
            break
    return rows
