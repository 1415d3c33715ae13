"""One episode into the dataset: load and validate it, write its video in the dataset's format (copy, remux or
one streaming transcode that also cuts its clips), relabel it (optional), and return its metadata rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from roboreward.atomic import atomic_copy
from roboreward.dataset.clip import clip_file_name, clip_length, encode_prefixes
from roboreward.dataset.media import FrameSource, VideoFormat, count_packets, file_record, remux_segment, transcode
from roboreward.dataset.reader import split_folder
from roboreward.sources import EpisodeRef, ReaderOptions, SourceError, load_episode, slug
from roboreward.types import COLUMNS, EncodedFrames, Episode, Example, RelabelResult, VideoSegment
from roboreward.video import (
    FRAME_PIXEL_BUDGET,
    PIXEL_BUDGET,
    VideoDecodeError,
    VideoInfo,
    check_ends,
    check_pixel_budget,
    is_environment_error,
    probe,
)

#: ``(episode, video_path) -> RelabelResult`` (see :mod:`roboreward.relabel`).
Relabeler = Callable[[Episode, Path], RelabelResult]


@dataclass(frozen=True)
class EpisodeSettings:
    """How a worker writes episodes: reader options, clips, the video format, the pixel budgets, the temp folder."""

    options: ReaderOptions
    clips: Sequence[tuple[float, int]]
    video: VideoFormat = VideoFormat()
    pixel_budget: int | None = PIXEL_BUDGET
    frame_pixel_budget: int | None = FRAME_PIXEL_BUDGET
    tmp_dir: Path | None = None


def error_field(exc: BaseException) -> str:
    """The field an input error is about (``video`` for undecodable videos, else the reader's field)."""
    if isinstance(exc, SourceError):
        return exc.field
    return "video" if isinstance(exc, VideoDecodeError) else "episode"


def _frame_source(episode: Episode) -> tuple[FrameSource, VideoInfo | None, VideoSegment | None, Path | None]:
    """The episode's frames as a stream, with the header, segment or file they come from (to copy them as they
    are when they fit); frames a reader decoded (RLDS, parquet images) have neither."""
    video = episode.video
    if isinstance(video, VideoSegment):
        header = probe(video.file)
        return FrameSource.from_segment(video, header), header, video, None
    if isinstance(video, str | Path):
        header = probe(video)
        return FrameSource.from_file(Path(video), header), header, None, Path(video)
    if isinstance(video, EncodedFrames):
        return FrameSource.from_encoded(video, episode.fps, f"{episode.id}: {video.key}"), None, None, None
    return FrameSource.from_array(np.asarray(video), episode.fps, f"{episode.id}: frames"), None, None, None


def write_videos(
    episode: Episode, target: Path, clip_targets: Sequence[tuple[Path, float]], settings: EpisodeSettings
) -> None:
    """Write the episode's video to ``target`` and its clips, in ``settings.video``'s format.

    The pixel budget is checked from the stream header first. A source that already fits the format is copied
    (a file) or remuxed (a segment of a shared file) and decoded at its first and last frame, or whole when clips
    are cut from it; any other is transcoded in one streaming pass together with its clips.
    """
    fmt, tmp = settings.video, settings.tmp_dir
    source, header, segment, path = _frame_source(episode)
    check_pixel_budget(source.info, settings.pixel_budget, frame_budget=settings.frame_pixel_budget, where=source.label)
    copied = False
    if header is not None and fmt.fits(header):
        if path is not None:
            atomic_copy(path, target, tmp_dir=tmp)
            copied = True
        elif segment is not None:
            n = segment.num_frames or count_packets(segment.file, segment.t0, segment.t1)
            copied = remux_segment(segment.file, segment.t0, target, n, tmp_dir=tmp)
    if not copied:
        transcode(source, fmt, [(target, None), *clip_targets], tmp_dir=tmp)
        return
    if clip_targets:  # decodes the whole copy (every frame checked), encodes the clips in the same pass
        n = probe(target).num_frames
        encode_prefixes(target, [(clip_length(n, f), p) for p, f in clip_targets], crf=fmt.crf, tmp_dir=tmp)
    else:
        check_ends(target)


def process_episode(
    ref: EpisodeRef,
    split: str,
    out: Path,
    settings: EpisodeSettings,
    relabeler: Relabeler | None = None,
) -> tuple[list[dict], list[dict], int, dict[str, list]]:
    """Write one episode's videos under ``out/<split>/`` and return (rows, relabel notes, LM calls, files).

    ``files`` maps each written video (relative to the split folder) to its ``[size, sha256]``. Raises on bad
    input (the caller records it and removes what this episode wrote) and on environment errors (the caller stops).
    """
    options = settings.options
    episode = load_episode(ref, options)
    sdir = out / split_folder(split)
    stem = slug(episode.id)
    source = slug(episode.source)
    rel = f"{source}/{stem}.mp4"
    target = sdir / rel
    label = episode.label if episode.label is not None else options.success_label
    will_clip = bool(settings.clips) and label == 5 and not episode.meta.get("no_clip")
    specs = (
        [(clip_file_name(stem, i, score), fraction, score) for i, (fraction, score) in enumerate(settings.clips, 1)]
        if will_clip
        else []
    )
    write_videos(episode, target, [(sdir / source / name, fraction) for name, fraction, _ in specs], settings)
    files = {rel: file_record(target)}
    files.update({f"{source}/{name}": file_record(sdir / source / name) for name, _, _ in specs})
    released = episode.meta.get("released_row")
    # rows of a released source that share this video (its counterfactual instructions): written with it
    shared = [released_example(r, rel, episode) for r in episode.meta.get("released_rows", [])[1:]]
    if released:
        base = released_example(released, rel, episode, episode.instruction, label)
    else:
        base = Example(
            file_name=rel,
            task=episode.instruction,
            reward=label,
            episode_id=episode.id,
            source=episode.source,
            embodiment=episode.embodiment,
            kind="original",
            original_instruction=episode.instruction,
        )
    rows = [base]
    for name, fraction, score in specs:  # a clip row is the episode's row but for its file, label and kind
        rows.append(replace(base, file_name=f"{source}/{name}", reward=score, kind="clipped", clip_fraction=fraction))
    notes: list[dict] = []
    calls = 0
    if relabeler is not None:
        try:
            result = relabeler(episode, target)
        except Exception as exc:  # keep the episode's own rows; the report says relabeling failed
            if is_environment_error(exc):
                raise
            note = f"relabeling failed, rows kept unrelabeled ({type(exc).__name__}: {exc})"
            return [r.to_row() for r in rows + shared], [relabel_note(episode, note)], calls, files
        calls = int(result.calls)
        notes = [relabel_note(episode, r) for r in result.skipped]
        cleaned = " ".join(str(result.instruction or "").split()) or base.task
        for r in rows:
            r.task = cleaned
        from roboreward.rubric import check_score

        for ex in result.examples:
            try:
                ex.reward = check_score(ex.reward, where="reward")
            except ValueError as exc:
                notes.append(relabel_note(episode, f"dropped a {ex.kind} example: {exc}"))
                continue
            if not ex.task or not ex.task.strip():
                notes.append(relabel_note(episode, f"dropped a {ex.kind} example with an empty task"))
                continue
            ex.file_name = rel
            ex.episode_id = ex.episode_id or base.episode_id
            ex.source = ex.source or base.source
            ex.embodiment = ex.embodiment or base.embodiment
            ex.original_instruction = ex.original_instruction or base.original_instruction
            rows.append(ex)
    return [r.to_row() for r in rows + shared], notes, calls, files


def released_example(
    released: dict, rel: str, episode: Episode, task: str | None = None, reward: int | None = None
) -> Example:
    """A row of a released-layout source as this build writes it: its columns, the new ``file_name``, and
    ``task`` / ``reward`` (default: the row's own)."""
    from roboreward.rubric import check_score

    row = {c: released.get(c) for c in COLUMNS if c in released}
    row.update(
        file_name=rel,
        task=task if task is not None else " ".join(str(released.get("task") or "").split()),
        reward=reward if reward is not None else check_score(released.get("reward"), where="reward"),
        episode_id=released.get("episode_id") or episode.id,
        source=released.get("source") or episode.source,
    )
    if released.get("gpt5_mini_check") and not row.get("label_check"):
        row["label_check"] = released["gpt5_mini_check"]
    return Example(**{k: v for k, v in row.items() if k in COLUMNS})


def relabel_note(episode: Episode, reason: str) -> dict:
    """A relabel note for the build report."""
    return {"episode": episode.id, "source": episode.source, "stage": "relabel", "reason": reason}
