"""Build a RoboReward dataset in the released, Hub-native layout (datasets' ``videofolder`` convention).

Pipeline: list episodes from the sources -> sample per sub-dataset -> split by episode group -> process shards
(load + validate an episode, copy or encode its video, cut temporal clips, optional LM relabeling) -> assemble::

    <out>/README.md                     dataset card: YAML configs/features + counts per split/source/kind/label
    <out>/<split>/metadata.jsonl        file_name, task, reward + our columns (roboreward.types.Example)
    <out>/<split>/<source>/<...>.mp4    videos (clips: <episode>_attempt_<n>_score_<1-4>.mp4)
    <out>/build_manifest.parquet        one row per example with the video's sha256 (an index of the build)
    <out>/build_report.json             counts, skipped episodes with their errors, relabel notes, timing
    <out>/.build/                       shard results and done markers (resume state; not part of the dataset)

Shards are written atomically (temp file + rename); a shard's result file is its done marker, so a killed build
re-run with the same arguments redoes only unfinished shards, and the final assembly is idempotent. Rows of a
relabeled episode (counterfactual / paraphrase) reuse the episode's video file: datasets 5.x ``videofolder``
reads metadata row by row, so several rows may name the same mp4.

Publish the folder with the Hub client (no uploader here)::

    hf upload <user>/<name> <out> . --repo-type dataset --exclude ".build/*" --exclude ".cache/*"
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

from roboreward.clip import clip_file_name, clip_frames, clip_length, encode_prefixes, parse_clips
from roboreward.dataset_io import SPLITS
from roboreward.sources import (
    EpisodeRef,
    ReaderOptions,
    SourceError,
    list_source,
    load_episode,
    parse_source_spec,
    sample_per_source,
    slug,
)
from roboreward.split import assign_splits, check_no_leakage, parse_fractions
from roboreward.types import Episode, Example, RelabelResult

FORMAT_VERSION = 1
BUILD_DIR = ".build"
MANIFEST = "build_manifest.parquet"
REPORT = "build_report.json"
#: Columns of metadata.jsonl, in order (the released three first).
COLUMNS: tuple[str, ...] = tuple(Example.__dataclass_fields__)

Relabeler = Callable[[Episode, Path], RelabelResult]


@dataclass
class BuildSummary:
    """What :func:`build_dataset` did."""

    out: Path
    counts: dict[str, int]
    episodes_planned: int
    episodes_built: int
    episodes_skipped: int
    shards_total: int
    shards_reused: int
    seconds: float
    report: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def episodes_per_s(self) -> float:
        done = self.episodes_planned if self.shards_reused < self.shards_total else 0
        return done / self.seconds if self.seconds > 0 else 0.0


# ----------------------------------------------------------------------------------------------------------------
# small file helpers
# ----------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """A file handle on a temp file beside ``path``, renamed to ``path`` when the block ends without an error
    (a reader never sees a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-", suffix=dst.suffix)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _encode(path: Path, frames: Any, fps: float) -> None:
    """H.264-encode frames with :func:`roboreward.video.write_video` (atomic), world-readable like copies."""
    from roboreward.video import write_video

    os.chmod(write_video(path, frames, fps), 0o644)


def remux_segment(src: Path, t0: float, t1: float | None, dst: Path, num_frames: int) -> bool:
    """Copy the packets of ``[t0, t1)`` of ``src`` into ``dst`` without re-encoding, when that is exact.

    LeRobot v3 concatenates per-episode encodes, so an episode's segment starts on a keyframe and its packets
    sit between that keyframe and the next episode's. Returns False (writing nothing) when the segment does not
    start on a keyframe or its packet count is not ``num_frames``; the caller then encodes the decoded frames.
    """
    import av

    eps = 1e-3
    try:
        with av.open(str(src)) as inp:
            st = inp.streams.video[0]
            tb = st.time_base
            if tb is None:
                return False
            if t0 > 0:
                inp.seek(int(t0 / tb), stream=st, backward=True, any_frame=False)
            packets = []
            started = False
            for pkt in inp.demux(st):
                if pkt.pts is None or pkt.size == 0:
                    continue
                t = float(pkt.pts * tb)
                if not started:
                    if pkt.is_keyframe and abs(t - t0) < eps:
                        started = True
                    elif t > t0 + eps and pkt.is_keyframe:
                        return False
                    else:
                        continue
                elif pkt.is_keyframe and t1 is not None and t >= t1 - eps:
                    break
                if t1 is not None and t >= t1 - eps:
                    return False  # a packet past the end before the next keyframe: not a clean segment
                packets.append(pkt)
            if not started or len(packets) != num_frames:
                return False
            offset = packets[0].pts
            dst.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-", suffix=".mp4")
            os.close(fd)
            try:
                with av.open(tmp, mode="w", format="mp4") as out:
                    ost = out.add_stream_from_template(st)
                    for pkt in packets:
                        pkt.pts -= offset
                        if pkt.dts is not None:
                            pkt.dts -= offset
                        pkt.stream = ost
                        out.mux(pkt)
                os.chmod(tmp, 0o644)
                os.replace(tmp, dst)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except (av.error.FFmpegError, ValueError, OSError):
        return False
    return True


def concat_mp4(parts: Sequence[Path], dst: Path) -> list[tuple[float, float]]:
    """Concatenate same-codec mp4s by stream copy (what LeRobot v3 does); returns each part's [t0, t1) in seconds."""
    import av

    spans: list[tuple[float, float]] = []
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dst), mode="w", format="mp4") as out:
        ost = None
        offset = 0  # in the output time base
        for part in parts:
            with av.open(str(part)) as inp:
                st = inp.streams.video[0]
                if ost is None:
                    ost = out.add_stream_from_template(st)
                    out_tb = st.time_base
                rate = st.average_rate or st.guessed_rate
                frame = int(round(1 / (rate * out_tb)))  # one frame in time-base units
                n = 0
                first = None
                for pkt in inp.demux(st):
                    if pkt.pts is None or pkt.size == 0:
                        continue
                    if first is None:
                        first = pkt.pts
                    pkt.pts = pkt.pts - first + offset
                    if pkt.dts is not None:
                        pkt.dts = pkt.dts - first + offset
                    pkt.stream = ost
                    out.mux(pkt)
                    n += 1
                spans.append((float(offset * out_tb), float((offset + n * frame) * out_tb)))
                offset += n * frame
    return spans


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# one episode
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _ShardTask:
    index: int
    key: str
    out: str
    items: list[tuple[dict, str]]  # (EpisodeRef dict, split)
    options: dict
    clips: list[tuple[float, int]]


def _error_field(exc: BaseException) -> str:
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
            _encode(target, frames, fps)
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
                _encode(sdir / source / name, clip_frames(frames, fraction), fps)
        for name, fraction, score in specs:
            rows.append(
                Example(
                    file_name=f"{source}/{name}",
                    task=base.task,
                    reward=score,
                    episode_id=base.episode_id,
                    source=base.source,
                    embodiment=base.embodiment,
                    kind="clipped",
                    original_instruction=base.original_instruction,
                    clip_fraction=fraction,
                )
            )
    del frames
    notes: list[dict] = []
    calls = 0
    if relabeler is not None:
        try:
            result = relabeler(episode, target)
        except Exception as exc:  # keep the episode's own rows; the report says relabeling failed
            note = f"relabeling failed, rows kept unrelabeled ({type(exc).__name__}: {exc})"
            return [r.to_row() for r in rows], [_note(episode, note)], calls
        calls = int(result.calls)
        notes = [_note(episode, r) for r in result.skipped]
        cleaned = " ".join(str(result.instruction or "").split()) or base.task
        for r in rows:
            r.task = cleaned
        from roboreward.rubric import check_score

        for ex in result.examples:
            try:
                ex.reward = check_score(ex.reward, where="reward")
            except ValueError as exc:
                notes.append(_note(episode, f"dropped a {ex.kind} example: {exc}"))
                continue
            if not ex.task or not ex.task.strip():
                notes.append(_note(episode, f"dropped a {ex.kind} example with an empty task"))
                continue
            ex.file_name = rel
            ex.episode_id = ex.episode_id or base.episode_id
            ex.source = ex.source or base.source
            ex.embodiment = ex.embodiment or base.embodiment
            ex.original_instruction = ex.original_instruction or base.original_instruction
            rows.append(ex)
    return [r.to_row() for r in rows], notes, calls


def _note(episode: Episode, reason: str) -> dict:
    return {"episode": episode.id, "source": episode.source, "stage": "relabel", "reason": reason}


def run_shard(task: _ShardTask, relabeler: Relabeler | None = None, stop: threading.Event | None = None) -> dict:
    """Process a shard's episodes and write its result file (the done marker) atomically. A set ``stop`` (Ctrl-C
    in the main thread while shards run on threads) ends the shard before its next episode, unwritten."""
    out = Path(task.out)
    options = ReaderOptions(**{**task.options, "progress_bins": tuple(task.options["progress_bins"])})
    clips = [tuple(c) for c in task.clips]
    result: dict[str, Any] = {
        "index": task.index,
        "key": task.key,
        "episodes": [],
        "skipped": [],
        "notes": [],
        "calls": 0,
    }
    for ref_dict, split in task.items:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        ref = EpisodeRef.from_dict(ref_dict)
        try:
            rows, notes, calls = process_episode(ref, split, out, options, clips, relabeler)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # bad input: record it, remove partial files, go on
            _remove_episode_files(out / split / slug(ref.source), slug(ref.id))
            msg = str(exc) if isinstance(exc, SourceError) else f"{ref.id}: {_error_field(exc)}: {exc}"
            result["skipped"].append(
                {"episode": ref.id, "source": ref.source, "split": split, "field": _error_field(exc), "error": msg}
            )
            continue
        result["episodes"].append({"id": ref.id, "split": split, "rows": rows})
        result["notes"] += notes
        result["calls"] += calls
    atomic_write_text(shard_path(out, task.index, task.key), json.dumps(result, ensure_ascii=False) + "\n")
    return result


def _run_shard_to_file(
    task: _ShardTask, relabeler: Relabeler | None = None, stop: threading.Event | None = None
) -> None:
    """:func:`run_shard` for a pool: the result stays in its file (a returned result would sit in the future, and
    the main process would hold every shard's rows until the pool ends)."""
    run_shard(task, relabeler, stop)


def _remove_episode_files(folder: Path, stem: str) -> None:
    if not folder.is_dir():
        return
    for p in list(folder.glob(f"{stem}.mp4")) + list(folder.glob(f"{stem}_attempt_*_score_*.mp4")):
        p.unlink(missing_ok=True)


def shard_path(out: Path, index: int, key: str) -> Path:
    return out / BUILD_DIR / "shards" / f"shard-{index:05d}-{key}.json"


# ----------------------------------------------------------------------------------------------------------------
# the build
# ----------------------------------------------------------------------------------------------------------------


def _resolve_sources(sources: Sequence[str]) -> list[str]:
    out = []
    for spec in sources:
        reader, path = parse_source_spec(spec)
        out.append("sample" if path is None else f"{reader}:{path.resolve()}")
    return out


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / BUILD_DIR).is_dir():
        raise FileExistsError(f"--out {out} is not empty and is not a RoboReward build folder (no {BUILD_DIR}/)")


def relabel_fingerprint(
    backend: str,
    text_model: str | None,
    video_model: str | None,
    paraphrases: int,
    max_retries: int = 3,
    label_check: bool = False,
) -> dict:
    """What decides the relabel results (not where the server runs, nor how many requests fly at once): the
    ``relabel_config`` the CLI passes to :func:`build_dataset`, part of the resume key."""
    return {
        "backend": backend,
        "text_model": text_model,
        "video_model": video_model,
        "paraphrases": paraphrases,
        "max_retries": max_retries,
        "label_check": label_check,
    }


def build_dataset(
    sources: Sequence[str],
    out: str | os.PathLike,
    *,
    seed: int = 0,
    episodes_per_source: int | None = None,
    clip_fractions: str | Sequence | None = None,
    split_fractions: str | Sequence[float] | None = None,
    camera: str | None = None,
    progress_bins: Sequence[float] = (20, 40, 60, 80),
    workers: int = 1,
    shard_size: int = 8,
    relabeler: Relabeler | None = None,
    relabel_config: dict | None = None,
    show_progress: bool = True,
) -> BuildSummary:
    """Build (or resume building) a dataset from ``sources`` into ``out``; returns a :class:`BuildSummary`.

    ``sources``: ``"sample"`` or ``"<reader>:<path>"`` with reader in lerobot | rlds | roboarena | released.
    ``clip_fractions``: e.g. ``"0.1:1,0.3:2,0.5:3,0.7:4"`` (the default) or ``"none"``.
    ``split_fractions``: train, validation, test (default 0.8, 0.1, 0.1), split by episode group.
    ``relabeler``: a callable ``(episode, video_path) -> RelabelResult`` (see :mod:`roboreward.relabel`);
    ``relabel_config`` identifies it in the build fingerprint (so changing it rebuilds the shards).
    ``workers``: shards in parallel: processes without a relabeler, threads of this process with one (episodes
    then wait on the LM concurrently; the output is the same for any ``workers``).
    """
    t_start = time.perf_counter()
    out = Path(out)
    _check_out_dir(out)
    clips = [list(c) for c in parse_clips(clip_fractions)]
    fractions = parse_fractions(split_fractions)
    options = ReaderOptions(camera=camera, progress_bins=tuple(float(b) for b in progress_bins))
    from roboreward.rubric import progress_to_label

    progress_to_label(50, options.progress_bins)  # validates the bins early
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    specs = _resolve_sources(sources)
    if not specs:
        raise ValueError("give at least one source")

    # 1. list, sample, split
    refs: list[EpisodeRef] = []
    for spec in specs:
        refs.extend(list_source(spec, options))
    seen: set[tuple[str, str]] = set()
    for r in refs:
        if (r.source, r.id) in seen:
            raise ValueError(f"episode {r.source}/{r.id} is listed twice (the same source given twice?)")
        seen.add((r.source, r.id))
    refs = sample_per_source(refs, episodes_per_source, seed)
    split_of = assign_splits(((r.source, r.group) for r in refs), fractions, seed)
    order = {s: i for i, s in enumerate(SPLITS)}
    plan = sorted(((r, split_of[r.group]) for r in refs), key=lambda x: (order[x[1]], x[0].source, x[0].id))

    fingerprint = {
        "format": FORMAT_VERSION,
        "sources": specs,
        "seed": seed,
        "episodes_per_source": episodes_per_source,
        "clips": clips,
        "split_fractions": list(fractions),
        "options": _options_dict(options),
        "shard_size": shard_size,
        "relabel": relabel_config if relabeler is not None else None,
    }
    fp = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    (out / BUILD_DIR / "shards").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / BUILD_DIR / "plan.json", json.dumps({"fingerprint": fp, **fingerprint}, indent=2) + "\n")

    tasks: list[_ShardTask] = []
    for i in range(0, len(plan), shard_size):
        items = [(r.to_dict(), s) for r, s in plan[i : i + shard_size]]
        key = hashlib.sha256((fp + json.dumps([(d["source"], d["id"], s) for d, s in items])).encode()).hexdigest()
        tasks.append(_ShardTask(i // shard_size, key[:16], str(out), items, _options_dict(options), clips))
    pending = [t for t in tasks if not shard_path(out, t.index, t.key).is_file()]
    reused = len(tasks) - len(pending)

    # 2. shards
    _run_shards(
        pending,
        relabeler,
        workers,
        show_progress,
        reused_episodes=sum(len(t.items) for t in tasks) - sum(len(t.items) for t in pending),
    )

    # 3. assemble
    report = assemble(out, [shard_path(out, t.index, t.key) for t in tasks], fingerprint=fingerprint, seed=seed)
    seconds = time.perf_counter() - t_start
    report["timing"] = {
        "seconds": round(seconds, 3),
        "shards_reused": reused,
        "shards_total": len(tasks),
        "workers": workers,
    }
    atomic_write_text(out / REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return BuildSummary(
        out=out,
        counts={s: report["splits"][s]["examples"] for s in report["splits"]},
        episodes_planned=len(plan),
        episodes_built=report["episodes"]["built"],
        episodes_skipped=report["episodes"]["skipped"],
        shards_total=len(tasks),
        shards_reused=reused,
        seconds=seconds,
        report=report,
    )


def _options_dict(options: ReaderOptions) -> dict:
    d = asdict(options)
    d["progress_bins"] = list(d["progress_bins"])
    return d


def _run_shards(
    pending: list[_ShardTask], relabeler: Relabeler | None, workers: int, show_progress: bool, reused_episodes: int
) -> None:
    from tqdm.auto import tqdm

    total = sum(len(t.items) for t in pending) + reused_episodes
    bar = tqdm(total=total, initial=reused_episodes, unit="ep", desc="build", disable=not show_progress)
    try:
        if workers <= 1 or len(pending) <= 1:
            for task in pending:
                run_shard(task, relabeler)
                bar.update(len(task.items))
            return
        import multiprocessing as mp
        from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed

        # A relabeler holds LM clients / loaded models (not fork-safe, too big to copy): shards then run on
        # threads of this process, so episodes wait on the LM server concurrently (its calls are thread-safe).
        # Threads cannot be interrupted: on Ctrl-C they stop before their next episode (``stop``), so the wait
        # below is for the episodes in progress, not for whole shards.
        stop = threading.Event() if relabeler is not None else None
        pool: Executor = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relabel")
            if relabeler is not None
            else ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"))
        )
        with pool:
            futures = {pool.submit(_run_shard_to_file, task, relabeler, stop): task for task in pending}
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(len(futures[fut].items))
            except BaseException:
                if stop is not None:
                    stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()


#: Manifest rows per parquet row group (and per buffer flush while assembling).
MANIFEST_ROW_GROUP = 8_192


class _SplitCounts:
    """Per-split counts gathered row by row (examples, episodes, by source/kind/reward)."""

    def __init__(self) -> None:
        self.examples = 0
        self.episodes: set[str] = set()
        self.source: Counter = Counter()
        self.kind: Counter = Counter()
        self.reward: Counter = Counter()

    def add(self, row: dict) -> None:
        self.examples += 1
        self.episodes.add(row["episode_id"])
        self.source[row["source"]] += 1
        self.kind[row["kind"]] += 1
        self.reward[int(row["reward"])] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "episodes": len(self.episodes),
            "by_source": dict(sorted(self.source.items())),
            "by_kind": dict(sorted(self.kind.items())),
            "by_reward": {str(k): v for k, v in sorted(self.reward.items())},
        }


def _shard_results(shard_files: Sequence[Path]) -> Iterator[dict]:
    """The shards' result files in plan order, one in memory at a time."""
    for p in shard_files:
        yield json.loads(p.read_text(encoding="utf-8"))


def assemble(out: Path, shard_files: Sequence[Path], *, fingerprint: dict, seed: int) -> dict:
    """Write metadata.jsonl per split, the manifest, the card; remove files no row names. Idempotent.

    Streams over the shard files (two passes), so memory stays flat however many episodes the build has.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pass 1: leakage check, counts, the files each split names, report material
    counts = {s: _SplitCounts() for s in SPLITS}
    named: dict[str, set[str]] = {s: set() for s in SPLITS}
    skipped: list[dict] = []
    notes: list[dict] = []
    calls = built = 0
    for res in _shard_results(shard_files):
        for ep in res["episodes"]:
            split = ep["split"]
            built += 1
            for r in ep["rows"]:
                counts[split].add(r)
                named[split].add(r["file_name"])
        skipped += res["skipped"]
        notes += res["notes"]
        calls += res.get("calls", 0)
    check_no_leakage((split, e) for split in SPLITS for e in sorted(counts[split].episodes))

    # pass 2, split by split: stale files go, metadata.jsonl and the manifest are written row by row
    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in _MANIFEST_SCHEMA])
    buffer: dict[str, list] = {name: [] for name, _ in _MANIFEST_SCHEMA}
    with atomic_open(out / MANIFEST) as manifest, pq.ParquetWriter(manifest, schema, compression="zstd") as writer:

        def flush() -> None:
            if buffer["split"]:
                writer.write_table(pa.Table.from_pydict(buffer, schema=schema))
                for column in buffer.values():
                    column.clear()

        for split in SPLITS:
            sdir = out / split
            if not counts[split].examples:
                if sdir.is_dir():
                    shutil.rmtree(sdir)
                continue
            meta = sdir / "metadata.jsonl"
            for p in sorted(sdir.rglob("*")):
                if p.is_file() and p != meta and p.relative_to(sdir).as_posix() not in named[split]:
                    p.unlink()  # stale files of a previous plan, temp files of a killed build
            i = 0
            with atomic_open(meta, "w", encoding="utf-8") as fh:
                for res in _shard_results(shard_files):
                    for ep in res["episodes"]:
                        if ep["split"] != split:
                            continue
                        hashes: dict[str, tuple[str, int]] = {}  # an episode's rows share its videos
                        for r in ep["rows"]:
                            values = {c: r.get(c) for c in COLUMNS}
                            fh.write(json.dumps(values, ensure_ascii=False) + "\n")
                            fn = r["file_name"]
                            if fn not in hashes:
                                path = sdir / fn
                                hashes[fn] = (_sha256(path), path.stat().st_size)
                            row = {"split": split, "row": i, **values}
                            row["video_sha256"], row["video_bytes"] = hashes[fn]
                            for name, _ in _MANIFEST_SCHEMA:
                                buffer[name].append(row[name])
                            i += 1
                            if len(buffer["split"]) >= MANIFEST_ROW_GROUP:
                                flush()
        flush()
        if not any(c.examples for c in counts.values()):
            writer.write_table(schema.empty_table())
    # shard files of other plans are stale
    live = {p.name for p in shard_files}
    for p in (out / BUILD_DIR / "shards").glob("*"):
        if p.name not in live:
            p.unlink()

    report: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "config": fingerprint,
        "episodes": {
            "built": built,
            "skipped": len(skipped),
            "skipped_by_source": dict(sorted(Counter(s["source"] for s in skipped).items())),
            "skipped_by_field": dict(sorted(Counter(s["field"] for s in skipped).items())),
        },
        "splits": {split: c.as_dict() for split, c in counts.items() if c.examples},
        "skipped": skipped,
        "relabel": {"lm_calls": calls, "notes": notes},
    }
    atomic_write_text(out / "README.md", dataset_card(report))
    return report


_FEATURES = [
    ("video", "video"),
    ("task", "string"),
    ("reward", "int64"),
    ("episode_id", "string"),
    ("source", "string"),
    ("embodiment", "string"),
    ("kind", "string"),
    ("original_instruction", "string"),
    ("clip_fraction", "float64"),
    ("failure_mode", "string"),
    ("validator_answer", "string"),
    ("label_check", "string"),
]

#: build_manifest.parquet: where each row is, what it says (the card's features but the video), the video's hash.
_MANIFEST_SCHEMA = [
    ("split", "string"),
    ("row", "int64"),
    ("file_name", "string"),
    *[f for f in _FEATURES if f[0] != "video"],
    ("video_sha256", "string"),
    ("video_bytes", "int64"),
]


def _short_spec(spec: str) -> str:
    """``reader:<folder name>`` (the card does not publish local paths; build_report.json keeps them)."""
    reader, sep, path = spec.partition(":")
    return f"{reader}:{Path(path).name}" if sep else spec


def dataset_card(report: dict) -> str:
    """README.md: YAML header (configs, features, split sizes) + human-readable counts and provenance."""
    import yaml

    splits = report["splits"]
    header = {
        "license": "other",
        "pretty_name": "RoboReward (built with roboreward)",
        "task_categories": ["video-classification", "robotics"],
        "tags": ["robotics", "reward-model", "video", "roboreward"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{s}/**"} for s in splits],
                "features": [{"name": n, "dtype": t} for n, t in _FEATURES],
            }
        ],
        "dataset_info": {"features": [{"name": n, "dtype": t} for n, t in _FEATURES]},
    }
    cfg = report["config"]
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        "",
        "# RoboReward dataset (built with `roboreward build`)",
        "",
        "Robot episode videos with a task instruction and a 1-5 episodic progress reward, in the layout of the",
        "public release [`teetone/RoboReward`](https://huggingface.co/datasets/teetone/RoboReward) "
        "(arXiv 2601.00675): datasets' `videofolder` convention, `<split>/metadata.jsonl` rows with `file_name`, "
        "`task`, `reward` beside the mp4 files. The first part of `file_name` names the source subset.",
        "",
        "## Rubric",
        "",
    ]
    from roboreward.rubric import RUBRIC, SCORE_NAMES

    lines += [f"- **{s} - {SCORE_NAMES[s]}**: {RUBRIC[s]}" for s in sorted(RUBRIC)]
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'ds = load_dataset("<this folder or repo id>")',
        'row = ds["train"][0]  # row["video"] is a torchcodec VideoDecoder',
        "```",
        "",
        'Publish with `hf upload <user>/<name> <this folder> . --repo-type dataset --exclude ".build/*" '
        '--exclude ".cache/*"` '
        '(or `HfApi().upload_folder(..., repo_type="dataset")`).',
        "",
        "## Columns",
        "",
        "| column | meaning |",
        "|---|---|",
        "| `file_name` / `video` | the episode (or clip) video, `<source>/<...>.mp4` |",
        "| `task` | the instruction the reward refers to |",
        "| `reward` | 1-5 progress label |",
        "| `episode_id`, `source`, `embodiment` | where the example comes from; split by episode |",
        "| `kind` | original, clipped (temporal clip of a success), counterfactual or paraphrase |",
        "| `original_instruction` | the source's instruction before cleaning/relabeling |",
        "| `clip_fraction` | fraction of the episode a clipped example keeps |",
        "| `failure_mode`, `validator_answer`, `label_check` | relabeling provenance, when relabeled |",
        "",
        "## Build",
        "",
        f"- sources: {', '.join(f'`{_short_spec(s)}`' for s in cfg['sources'])}",
        f"- seed: {cfg['seed']}; episodes per source: {cfg['episodes_per_source'] or 'all'}",
        f"- split fractions (train, validation, test; by episode): {cfg['split_fractions']}",
        "- temporal clips (fraction -> reward): "
        + (", ".join(f"{f:g} -> {s}" for f, s in cfg["clips"]) or "none")
        + "; full success video -> 5",
        f"- RoboArena progress bins (0-100 -> 1-5, upper-exclusive edges): {cfg['options']['progress_bins']}",
        f"- LM relabeling: {'on' if cfg['relabel'] is not None else 'off'}",
        f"- episodes built: {report['episodes']['built']}; skipped (bad input, see build_report.json): "
        f"{report['episodes']['skipped']}",
        "",
        "## Counts",
        "",
    ]
    for split, c in splits.items():
        lines += [
            f"### {split}: {c['examples']} examples from {c['episodes']} episodes",
            "",
            "| source | examples |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in c["by_source"].items()]
        lines += ["", "| kind | examples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in c["by_kind"].items()]
        lines += ["", "| reward | examples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in c["by_reward"].items()]
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------


def _opt(*names: str, **kwargs: Any) -> Any:
    """``typer.Option`` (typer is imported only when the CLI evaluates the signature)."""
    import typer

    return typer.Option(*names, **kwargs)


def build_command(
    source: Annotated[
        list[str],
        _opt(
            "--source",
            "-s",
            metavar="SPEC",
            help="sample | lerobot:PATH | rlds:PATH | roboarena:PATH | released:PATH (repeatable; default sample)",
        ),
    ] = None,  # type: ignore[assignment]
    out: Annotated[Path, _opt("--out", "-o", help="output folder")] = Path("roboreward_dataset"),
    seed: Annotated[int, _opt("--seed", help="seed for sampling and splitting")] = 0,
    episodes_per_source: Annotated[
        int | None, _opt("--episodes-per-source", help="sample N episodes uniformly per sub-dataset (default: all)")
    ] = None,
    clip_fractions: Annotated[
        str, _opt("--clip-fractions", help="FRACTION:LABEL,... temporal clips of successes, or 'none'")
    ] = "0.1:1,0.3:2,0.5:3,0.7:4",
    split_fractions: Annotated[str, _opt("--split-fractions", help="train,validation,test")] = "0.8,0.1,0.1",
    workers: Annotated[int, _opt("--workers", "-j", help="shards in parallel (processes; threads with --relabel)")] = 1,
    camera: Annotated[
        str | None,
        _opt(
            "--camera",
            help="camera to use (LeRobot key or name, RLDS observation key, "
            "RoboArena left_shoulder/right_shoulder/wrist)",
        ),
    ] = None,
    progress_bins: Annotated[
        str, _opt("--progress-bins", help="four 0-100 edges mapping RoboArena progress to 1-5")
    ] = "20,40,60,80",
    shard_size: Annotated[int, _opt("--shard-size", help="episodes per resumable shard")] = 8,
    relabel: Annotated[bool, _opt("--relabel/--no-relabel", help="LM instruction cleaning + counterfactuals")] = False,
    backend: Annotated[str, _opt("--backend", help="transformers | openai")] = "transformers",
    text_model: Annotated[str | None, _opt("--text-model")] = None,
    video_model: Annotated[str | None, _opt("--video-model")] = None,
    base_url: Annotated[str | None, _opt("--base-url", help="OpenAI-compatible server URL")] = None,
    api_key: Annotated[str | None, _opt("--api-key", envvar="OPENAI_API_KEY")] = None,
    paraphrases: Annotated[int, _opt("--paraphrases", help="paraphrases per instruction (relabel)")] = 0,
    max_retries: Annotated[
        int, _opt("--max-retries", help="LM retries per stage (unparseable output, a 'no' from the validator)")
    ] = 3,
    concurrency: Annotated[int, _opt("--concurrency", help="parallel requests per episode (openai backend)")] = 4,
    label_check: Annotated[
        bool,
        _opt("--label-check/--no-label-check", help="ask the VLM to score each relabeled row (kept in label_check)"),
    ] = False,
    timeout: Annotated[float, _opt("--timeout", help="seconds per LM request (openai backend)")] = 120.0,
) -> None:
    """Build a RoboReward dataset (videofolder layout + card) from robot-video sources; resumable."""
    import typer
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    bins = tuple(float(x) for x in progress_bins.split(","))
    relabeler = None
    relabel_config = None
    if relabel:
        from roboreward.relabel import make_relabeler

        relabel_config = relabel_fingerprint(backend, text_model, video_model, paraphrases, max_retries, label_check)
        relabeler = make_relabeler(
            backend,
            text_model=text_model,
            video_model=video_model,
            base_url=base_url,
            api_key=api_key,
            paraphrases=paraphrases,
            max_retries=max_retries,
            concurrency=concurrency,
            label_check=label_check,
            timeout=timeout,
            cache_dir=Path(out) / ".cache" / "lm",
        )
    try:
        summary = build_dataset(
            source or ["sample"],
            out,
            seed=seed,
            episodes_per_source=episodes_per_source,
            clip_fractions=clip_fractions,
            split_fractions=split_fractions,
            camera=camera,
            progress_bins=bins,
            workers=workers,
            shard_size=shard_size,
            relabeler=relabeler,
            relabel_config=relabel_config,
        )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished shards are kept; re-run the same command to resume[/]")
        raise typer.Exit(130) from None
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    table = Table(title=f"RoboReward dataset in {summary.out}")
    for col in ("split", "examples", "episodes", "by kind", "by reward"):
        table.add_column(col)
    for split, c in summary.report["splits"].items():
        table.add_row(
            split,
            str(c["examples"]),
            str(c["episodes"]),
            ", ".join(f"{k} {v}" for k, v in c["by_kind"].items()),
            ", ".join(f"{k}:{v}" for k, v in c["by_reward"].items()),
        )
    console.print(table)
    console.print(
        f"{summary.episodes_built} episodes built, {summary.episodes_skipped} skipped "
        f"(see {summary.out / REPORT}); {summary.shards_reused}/{summary.shards_total} shards reused; "
        f"{summary.seconds:.1f} s"
    )
