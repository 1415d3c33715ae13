"""One writer per output folder: an exclusive lock file naming its holder.

``with output_lock(folder, "roboreward build"):`` takes ``folder/<name>`` (an ``fcntl.flock`` on a file that
says which PID on which host holds it, since when, for what). A second writer is refused at once with
:class:`OutputLockedError` naming the holder. The kernel drops a flock when its process dies, so the lock of a
killed writer is stale by construction and the next writer takes it over (and rewrites the holder line); the
file itself is left in place. Where the filesystem has no flock (some network mounts), the file is created
exclusively instead and a holder on this host that no longer runs is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".lock"


class OutputLockedError(RuntimeError):
    """Another process writes into this folder."""


def _holder(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8")[:4096] or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(path: Path, folder: Path) -> str:
    h = _holder(path)
    who = f"PID {h.get('pid', '?')} on host {h.get('host', '?')}"
    what = f" ({str(h.get('what', ''))[:80]}, since {h.get('since', '?')})" if h else ""
    return (
        f"{folder} is being written by {who}{what}; wait for it to finish or choose another output folder "
        f"(the lock is {path}; a killed writer's lock is taken over automatically)"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, what: str = "roboreward", *, name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold the lock of ``folder`` for the block (``folder`` is created); yields the lock file's path.

    Raises :class:`OutputLockedError` naming the holder when another live process holds it.
    """
    import fcntl

    folder = Path(folder)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    exclusive = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise OutputLockedError(_describe(path, folder)) from None
            exclusive = True  # no flock on this filesystem: fall back to an exclusively created file
            os.close(fd)
            fd = -1
            if not existed:
                path.unlink()
            fd = _create_exclusive(path, folder)
        since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what, "since": since}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield path
    finally:
        if exclusive and fd >= 0:
            with contextlib.suppress(OSError):
                path.unlink()
        if fd >= 0:
            os.close(fd)


def _create_exclusive(path: Path, folder: Path) -> int:
    """``O_EXCL`` lock creation; a holder on this host whose PID no longer runs is taken over (once)."""
    for _ in range(2):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            h = _holder(path)
            if h.get("host") == socket.gethostname() and isinstance(h.get("pid"), int) and not _alive(h["pid"]):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            raise OutputLockedError(_describe(path, folder)) from None
    raise OutputLockedError(_describe(path, folder))
