"""A folder in the released RoboReward layout (``<split>/metadata.jsonl``), to rebuild or re-split a release.

Rows are kept as they are (no further clipping); examples of one ``episode_id`` share a split group.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from roboreward.sources.common import EpisodeRef, ReaderOptions, SourceError, slug
from roboreward.types import Episode

_CLIP_SUFFIX = re.compile(r"_attempt_\d+_score_\d+$")


def list_released(path: Path, options: ReaderOptions) -> Iterator[EpisodeRef]:
    """Every row of every split; rows of one ``episode_id`` (or one un-clipped file stem) share a group."""
    from roboreward.dataset.reader import available_splits, read_split

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
