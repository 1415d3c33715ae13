"""Run shards: each shard's episodes in turn, its result file written atomically as its done marker; shards in
parallel on a process pool (threads of this process when a relabeler is used)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from roboreward.atomic import atomic_write_text
from roboreward.dataset.episode import Relabeler, error_field, process_episode
from roboreward.dataset.plan import ShardTask, shard_path
from roboreward.sources import EpisodeRef, ReaderOptions, SourceError, slug


def run_shard(task: ShardTask, relabeler: Relabeler | None = None, stop: threading.Event | None = None) -> dict:
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
            msg = str(exc) if isinstance(exc, SourceError) else f"{ref.id}: {error_field(exc)}: {exc}"
            result["skipped"].append(
                {"episode": ref.id, "source": ref.source, "split": split, "field": error_field(exc), "error": msg}
            )
            continue
        result["episodes"].append({"id": ref.id, "split": split, "rows": rows})
        result["notes"] += notes
        result["calls"] += calls
    atomic_write_text(shard_path(out, task.index, task.key), json.dumps(result, ensure_ascii=False) + "\n")
    return result


def _run_shard_to_file(
    task: ShardTask, relabeler: Relabeler | None = None, stop: threading.Event | None = None
) -> None:
    """:func:`run_shard` for a pool: the result stays in its file (a returned result would sit in the future, and
    the main process would hold every shard's rows until the pool ends)."""
    run_shard(task, relabeler, stop)


def _remove_episode_files(folder: Path, stem: str) -> None:
    if not folder.is_dir():
        return
    for p in list(folder.glob(f"{stem}.mp4")) + list(folder.glob(f"{stem}_attempt_*_score_*.mp4")):
        p.unlink(missing_ok=True)


def run_shards(
    pending: list[ShardTask], relabeler: Relabeler | None, workers: int, show_progress: bool, reused_episodes: int
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
