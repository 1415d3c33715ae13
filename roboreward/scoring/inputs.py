"""What ``roboreward score`` can be given, as :class:`~roboreward.scoring.batch.ScoreItem` lists.

* video files, folders (every video below them) and globs (``"clips/**/*.mp4"``), with one instruction for all;
* a manifest: ``.jsonl`` or ``.csv`` rows with a video path (``path`` / ``video`` / ``file_name`` /
  ``video_path``, relative to the manifest's folder) and an instruction (``instruction`` / ``task``); an optional
  ``key`` / ``id`` column names the row, other columns are carried into the results;
* a built dataset (a folder with ``<split>/metadata.jsonl``): the rows of one split, keyed as ``roboreward eval``
  keys them, so the results are the same kind of predictions file.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roboreward.scoring.batch import ScoreItem

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")
MANIFEST_SUFFIXES: tuple[str, ...] = (".jsonl", ".csv")
PATH_COLUMNS: tuple[str, ...] = ("path", "video", "file_name", "video_path")
INSTRUCTION_COLUMNS: tuple[str, ...] = ("instruction", "task")
KEY_COLUMNS: tuple[str, ...] = ("key", "id")
#: Columns of a results row that a manifest's own columns may not take.
RESULT_COLUMNS: frozenset[str] = frozenset(
    {"score", "probs", "expected", "parsed", "raw_text", "model", "fps", "max_frames", "min_frames", "num_frames"}
)


class InputError(ValueError):
    """Inputs that cannot be scored: a missing file, an empty folder, a manifest row without a video."""


def _exists(arg: str) -> bool:
    pattern = os.path.expanduser(arg)
    return Path(pattern).exists() or (glob.has_magic(arg) and bool(glob.glob(pattern, recursive=True)))


def split_instruction(args: Sequence[str]) -> tuple[list[str], str | None]:
    """``INPUT... [INSTRUCTION]`` -> (inputs, instruction): the last of two or more arguments is the instruction
    unless it names an existing path or matches files (``score a.mp4 b.mp4`` without one is refused later)."""
    args = list(args)
    if len(args) >= 2 and not _exists(args[-1]):
        return args[:-1], args[-1]
    return args, None


def is_dataset(path: Path) -> bool:
    """A built RoboReward dataset: a folder with at least one ``<split>/metadata.jsonl``."""
    return path.is_dir() and any(p.is_file() for p in path.glob("*/metadata.jsonl"))


def expand_videos(inputs: Sequence[str]) -> list[Path]:
    """Video paths of files, folders (recursively, sorted) and globs, in the order given, without repeats."""
    out: list[Path] = []
    for arg in inputs:
        if glob.has_magic(arg) and not Path(arg).exists():
            found = [Path(p) for p in sorted(glob.glob(os.path.expanduser(arg), recursive=True))]
            found = [p for p in found if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
            if not found:
                raise InputError(f"{arg}: no video files match ({', '.join(VIDEO_SUFFIXES)})")
            out += found
            continue
        path = Path(arg).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise InputError(f"{path}: no video files in this folder ({', '.join(VIDEO_SUFFIXES)})")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: no such video file")
    return list(dict.fromkeys(out))


def video_items(paths: Sequence[Path], instruction: str) -> list[ScoreItem]:
    """One item per video, all with ``instruction``, keyed ``<path>::<instruction>``."""
    if not instruction.strip():
        raise InputError("the instruction is empty")
    return [
        ScoreItem(f"{p}::{instruction}", p, instruction, {"video": str(p), "instruction": instruction}) for p in paths
    ]


def _manifest_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) of a jsonl or csv manifest; a malformed line names the file and line."""
    if path.suffix.lower() == ".csv":
        rows: list[tuple[str, dict[str, Any]]] = []
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                rows.append((f"{path}:{reader.line_num}", {k: v for k, v in row.items() if k is not None}))
        return rows
    from roboreward.dataset import DatasetFormatError, iter_metadata

    try:
        return [(f"{path}:{lineno}", row) for lineno, row in iter_metadata(path)]
    except DatasetFormatError as exc:  # the same checks as a split's metadata.jsonl
        raise InputError(str(exc)) from None


def _column(row: dict[str, Any], names: Sequence[str], where: str, what: str) -> tuple[str, str]:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            if not isinstance(value, str | int):
                raise InputError(f"{where}: {name} must be a string, got {type(value).__name__}")
            return name, str(value)
    raise InputError(f"{where}: no {what} (one of the columns {', '.join(names)})")


def manifest_items(path: Path, instruction: str | None = None) -> list[ScoreItem]:
    """Items of a jsonl / csv manifest; ``instruction`` fills rows that have none."""
    rows = _manifest_rows(path)
    if not rows:
        raise InputError(f"{path}: the manifest has no rows")
    items = []
    for where, row in rows:
        path_col, video = _column(row, PATH_COLUMNS, where, "video path")
        if instruction is not None and not any(row.get(c) for c in INSTRUCTION_COLUMNS):
            task_col, task = "", instruction
        else:
            task_col, task = _column(row, INSTRUCTION_COLUMNS, where, "instruction")
        video_path = Path(video).expanduser()
        if not video_path.is_absolute():
            video_path = path.parent / video_path
        key_col = next((c for c in KEY_COLUMNS if row.get(c) not in (None, "")), None)
        key = str(row[key_col]) if key_col else f"{video}::{task}"
        taken = sorted(RESULT_COLUMNS & set(row))
        if taken:
            raise InputError(f"{where}: column(s) {taken} are result columns; rename them in the manifest")
        fields = {k: v for k, v in row.items() if k not in (path_col, task_col, key_col)}
        items.append(ScoreItem(key, video_path, task, {**fields, "video": video, "instruction": task}))
    return items


def dataset_items(root: Path, split: str = "test", limit: int | None = None) -> list[ScoreItem]:
    """The rows of one split of a built dataset, with ``roboreward eval``'s keys and columns."""
    from roboreward.dataset import read_split
    from roboreward.evaluation import example_keys

    rows = read_split(root, split, limit=limit)
    if not rows:
        raise InputError(f"{root}: split {split!r} has no examples")
    fields = [{"file_name": r.file_name, "task": r.task, "subset": r.subset, "reward": r.reward} for r in rows]
    return [ScoreItem(k, r.video_path, r.task, f) for k, r, f in zip(example_keys(rows), rows, fields, strict=True)]


def collect_items(
    args: Sequence[str], *, instruction: str | None = None, split: str = "test", limit: int | None = None
) -> tuple[list[ScoreItem], str]:
    """The items of ``roboreward score`` arguments and what they were: ``"videos"``, ``"manifest"`` or ``"dataset"``.

    ``args`` is ``INPUT... [INSTRUCTION]`` (see :func:`split_instruction`) unless ``instruction`` is given. Videos
    need the instruction; a manifest takes its own (the instruction, if given, fills rows without one); a built
    dataset its tasks.
    """
    inputs, instruction = (list(args), instruction) if instruction is not None else split_instruction(args)
    if not inputs:
        raise InputError("give a video, a folder, a glob, a manifest (.jsonl / .csv) or a built dataset")
    first = Path(inputs[0]).expanduser()
    if len(inputs) == 1 and first.is_file() and first.suffix.lower() in MANIFEST_SUFFIXES:
        return manifest_items(first, instruction)[:limit], "manifest"
    if len(inputs) == 1 and instruction is None and is_dataset(first):
        return dataset_items(first, split, limit), "dataset"
    if len(inputs) == 1 and instruction is None and (first / "meta" / "info.json").is_file():
        raise InputError(f"{first} is a LeRobot dataset: score its episodes with `roboreward annotate {first}`")
    paths = expand_videos(inputs)
    if instruction is None:
        raise InputError(f"give the instruction the videos are judged against (after {inputs[-1]!r})")
    return video_items(paths[:limit], instruction), "videos"
