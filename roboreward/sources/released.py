"""A folder in the released RoboReward layout (``<split>/metadata.jsonl``), to rebuild or re-split a release.

Rows are kept as they are (no further clipping). One ref per video file: rows that share a video (the release's
counterfactual instructions of one episode) travel together in ``meta["released_rows"]``, so the video is copied
once. The episode of a row is its ``episode_id``, else its file name without the release's clip suffix
``_attempt_<n>_score_<k>``; it is written back into every row (so a rebuilt dataset keeps the grouping) and its
rows share a split group. A row named with the clip suffix and no ``kind`` of its own is a ``clipped`` row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from roboreward.sources.common import EpisodeRef, ListingProblem, ReaderOptions, SourceError, quote, slug
from roboreward.types import Episode

_CLIP_SUFFIX = re.compile(r"_attempt_\d+_score_(\d+)$")


def episode_of(file_name: str, episode_id: str = "") -> tuple[str, bool]:
    """(episode, is a clip) of a released row: its ``episode_id``, else its path without the clip suffix."""
    stem = Path(file_name).with_suffix("").as_posix()
    clipped = _CLIP_SUFFIX.search(stem) is not None
    return (str(episode_id) if episode_id else _CLIP_SUFFIX.sub("", stem)), clipped


def list_released(
    path: Path, options: ReaderOptions, problems: list[ListingProblem] | None = None
) -> Iterator[EpisodeRef]:
    """One ref per video file of every split (its rows in the locator); rows of one episode share a group.

    ``problems`` is accepted for the registry's signature: a bad ``metadata.jsonl`` row always raises."""
    from roboreward.dataset.reader import available_splits, read_split

    splits = available_splits(path)
    if not splits:
        raise FileNotFoundError(f"{path}: no <split>/metadata.jsonl found")
    seen: dict[str, int] = {}
    for split in splits:
        if options.source_split and split != options.source_split:
            continue
        by_video: dict[str, list] = {}
        # a bad row (a file_name that leaves the split folder, no task, ...) refuses the whole release, naming
        # the file and line: its rows are one file, and a refusal is not something to skip
        for row in read_split(path, split, check_files=False):
            by_video.setdefault(str(row.video_path), []).append(row)
        for video, rows in by_video.items():
            first = rows[0]
            episode, _ = episode_of(first.file_name, first.episode_id)
            data = []
            for row in rows:
                d = row.data
                d["episode_id"] = episode
                if row.kind == "original" and episode_of(row.file_name)[1]:
                    d["kind"] = "clipped"
                data.append(d)
            data.sort(key=lambda d: d["kind"] != "original")  # the original row first, when there is one
            parts = Path(first.file_name).with_suffix("").parts
            base = slug("__".join(parts[1:] if len(parts) > 1 else parts))  # the path below the subset folder
            n = seen[base] = seen.get(base, 0) + 1
            eid = base if n == 1 else f"{base}__{n}"
            yield EpisodeRef(
                "released",
                slug(first.subset),
                eid,
                f"{first.subset}/{episode}",
                {"video": video, "rows": data, "split": split},
            )


def load_released(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    from roboreward.rubric import check_score

    rows = ref.locator.get("rows") or [ref.locator["row"]]
    row = rows[0]
    video = Path(ref.locator["video"])
    if not video.is_file():
        raise SourceError(ref.id, "file_name", f"{quote(row.get('file_name'))}: video not found at {video}")
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
        meta={"released_row": row, "released_rows": rows, "released_split": ref.locator["split"], "no_clip": True},
    )
