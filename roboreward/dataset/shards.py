"""Run shards: each shard's episodes in turn, its result file written atomically as its done marker; shards in
parallel on a process pool (threads of this process when a relabeler is used).

Input errors (a bad episode) are recorded in the shard and the build goes on; environment errors (disk full,
permissions, a temp file gone, out of memory) stop the shard before anything of it is marked done and end the
build with :class:`BuildEnvironmentError`, so a re-run after the fault redoes exactly what is missing. Pool
workers die with their parent (:func:`die_with_parent`).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from roboreward.atomic import TMP_PREFIX, atomic_write_text
from roboreward.dataset.episode import Relabeler, error_field, process_episode
from roboreward.dataset.media import sha256_file
from roboreward.dataset.plan import ShardTask, shard_path
from roboreward.dataset.reader import split_folder
from roboreward.sources import EpisodeRef, SourceError, slug
from roboreward.video import is_environment_error


class BuildEnvironmentError(RuntimeError):
    """The machine, not the input, stopped a shard (nothing of it was marked done; re-run to resume)."""


def environment_fault(exc: BaseException, out: Path) -> bool:
    """Whether ``exc`` is the machine's fault: :func:`roboreward.video.is_environment_error`, or a file of the
    build's own (under ``out`` or a temp file) that vanished while it was being written."""
    if is_environment_error(exc):
        return True
    root = str(Path(out).resolve())
    seen: BaseException | None = exc
    for _ in range(16):
        if seen is None:
            break
        if isinstance(seen, FileNotFoundError):
            for name in (seen.filename, seen.filename2):
                if name and (TMP_PREFIX in os.path.basename(str(name)) or str(Path(name).resolve()).startswith(root)):
                    return True
        seen = seen.__cause__ or seen.__context__
    return False


def run_shard(task: ShardTask, relabeler: Relabeler | None = None, stop: threading.Event | None = None) -> dict:
    """Process a shard's episodes and write its result file (the done marker) atomically. A set ``stop`` (Ctrl-C
    in the main thread while shards run on threads) ends the shard before its next episode, unwritten. Raises
    :class:`BuildEnvironmentError` (the marker unwritten) when the machine fails."""
    out = Path(task.out)
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
            rows, notes, calls, files = process_episode(ref, split, out, task.settings, relabeler)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # bad input: record it, remove partial files, go on
            _remove_episode_files(out / split_folder(split) / slug(ref.source), slug(ref.id))
            if environment_fault(exc, out):
                raise BuildEnvironmentError(
                    f"shard {task.index}, episode {ref.id}: {type(exc).__name__}: {str(exc)[:300]} -- an environment "
                    "error (disk, permissions, memory, files removed under --out), not bad input: nothing of this "
                    "shard was marked done; fix it and re-run the same command to build what is missing"
                ) from None
            msg = str(exc) if isinstance(exc, SourceError) else f"{ref.id}: {error_field(exc)}: {exc}"
            result["skipped"].append(
                {"episode": ref.id, "source": ref.source, "split": split, "field": error_field(exc), "error": msg}
            )
            continue
        result["episodes"].append({"id": ref.id, "split": split, "rows": rows, "files": files})
        result["notes"] += notes
        result["calls"] += calls
    marker = shard_path(out, task.index, task.key)
    atomic_write_text(marker, json.dumps(result, ensure_ascii=False) + "\n", tmp_dir=task.settings.tmp_dir)
    return result


def marker_ok(out: Path, marker: Path, *, checksum: bool = True) -> bool:
    """Whether a shard's done marker holds: it parses, and every video it names is in ``out`` with the size (and,
    with ``checksum``, the sha256) it recorded. A marker that does not hold is redone, not trusted."""
    try:
        result = json.loads(marker.read_text(encoding="utf-8"))
        for ep in result["episodes"]:
            for name, (size, sha) in ep["files"].items():
                path = out / split_folder(ep["split"]) / name
                if not path.is_file() or path.stat().st_size != size:
                    return False
                if checksum and sha256_file(path) != sha:
                    return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


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


def die_with_parent() -> None:
    """Pool-worker initializer: end this process when its parent dies. On Linux the kernel sends SIGKILL
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread checks the parent once a second. Ctrl-C is the
    parent's to handle (it terminates the workers): a worker interrupted while it holds the pool's queue lock
    would hang the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    try:  # the symbols already loaded (libc): no library search, no subprocess, no import in a forked child
        ok = ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        ok = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if ok:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


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
            else ProcessPoolExecutor(
                max_workers=workers, mp_context=mp.get_context("fork"), initializer=die_with_parent
            )
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
                if stop is None:  # processes: end the workers' shards now (unmarked: redone on resume)
                    for child in mp.active_children():
                        child.terminate()
                raise
    finally:
        bar.close()
