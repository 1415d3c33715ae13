"""One episode into the dataset: load and validate it, write its video (copy, remux or encode), cut its clips,
relabel it (optional), and return its metadata rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from roboreward.atomic import atomic_copy
from roboreward.dataset.clip import clip_file_name, clip_frames, clip_length, encode_prefixes
from roboreward.dataset.media import encode, remux_segment
from roboreward.sources import EpisodeRef, ReaderOptions, SourceError, load_episode, slug
from roboreward.types import COLUMNS, Episode, Example, RelabelResult

#: ``(episode, video_path) -> RelabelResult`` (see :mod:`roboreward.relabel`).
Relabeler = Callable[[Episode, Path], RelabelResult]


def error_field(exc: BaseException) -> str:
    if isinstance(exc, SourceError):
        return exc.field
    from roboreward.video import VideoDecodeError

    return "video" if isinstance(exc, VideoDecodeError) else "episode"


def process_episode(
    ref: EpisodeRef,
    split: str,
    out: Path,
    options: ReaderOptions,
    clips: Sequence[tuple[float, int]],
    relabeler: Relabeler | None = None,
) -> tuple[list[dict], list[dict], int]:
    """Write one episode's videos under ``out/<split>/`` and return (rows, relabel notes, LM calls).

    Raises on bad input (the caller records it and removes what this episode wrote).
    """
    from roboreward.video import probe, read_all_frames

    episode = load_episode(ref, options)
    sdir = out / split
    stem = slug(episode.id)
    source = slug(episode.source)
    rel = f"{source}/{stem}.mp4"
    target = sdir / rel
    frames = None
    label = episode.label if episode.label is not None else options.success_label
    will_clip = bool(clips) and label == 5 and not episode.meta.get("no_clip")
    copied = False  # the written original holds the source's own packets
    if isinstance(episode.video, str | Path):
        src = Path(episode.video)
        fps = probe(src).fps  # raises VideoDecodeError naming the file for corrupt / empty videos
        atomic_copy(src, target)
        copied = True
    else:
        frames = episode.video
        fps = episode.fps
        seg = episode.meta.get("segment")
        copied = bool(seg) and remux_segment(Path(seg["file"]), seg["t0"], seg["t1"], target, len(frames))
        if not copied:
            encode(target, frames, fps)
    released = episode.meta.get("released_row")
    if released:
        row = {c: released.get(c) for c in COLUMNS if c in released}
        row.update(
            file_name=rel,
            task=episode.instruction,
            reward=label,
            episode_id=released.get("episode_id") or episode.id,
            source=released.get("source") or episode.source,
        )
        if released.get("gpt5_mini_check") and not row.get("label_check"):
            row["label_check"] = released["gpt5_mini_check"]
        base = Example(**{k: v for k, v in row.items() if k in COLUMNS})
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
    if will_clip:
        specs = [(clip_file_name(stem, i, score), fraction, score) for i, (fraction, score) in enumerate(clips, 1)]
        done = False
        info = probe(target) if copied else None
        if info is not None and info.width % 2 == 0 and info.height % 2 == 0:
            # decode the file once and encode every clip in the same pass (no RGB round trip)
            n = info.num_frames
            done = encode_prefixes(target, [(clip_length(n, f), sdir / source / name) for name, f, _ in specs]) == n
            if not done:  # the container's frame count was off: cut exactly from decoded frames
                frames, fps = read_all_frames(target)
        if not done:
            assert frames is not None
            for name, fraction, _ in specs:
                encode(sdir / source / name, clip_frames(frames, fraction), fps)
        for name, fraction, score in specs:  # a clip row is the episode's row but for its file, label and kind
            rows.append(
                replace(base, file_name=f"{source}/{name}", reward=score, kind="clipped", clip_fraction=fraction)
            )
    del frames
    notes: list[dict] = []
    calls = 0
    if relabeler is not None:
        try:
            result = relabeler(episode, target)
        except Exception as exc:  # keep the episode's own rows; the report says relabeling failed
            note = f"relabeling failed, rows kept unrelabeled ({type(exc).__name__}: {exc})"
            return [r.to_row() for r in rows], [relabel_note(episode, note)], calls
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
    return [r.to_row() for r in rows], notes, calls


def relabel_note(episode: Episode, reason: str) -> dict:
    """A relabel note for the build report."""
    return {"episode": episode.id, "source": episode.source, "stage": "relabel", "reason": reason}
