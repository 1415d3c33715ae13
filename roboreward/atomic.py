"""Atomic file writes: the one temp-file-then-rename helper of the package.

Every file the pipeline writes (dataset videos, metadata, manifests, caches, model cards) goes through
:func:`atomic_path` or one of its wrappers, so a reader never sees a half-written file and a killed writer
leaves only a ``.tmp-*`` file beside the target, never a truncated target.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, suffix: str | None = None, tmp_dir: str | os.PathLike | None = None
) -> Iterator[Path]:
    """A fresh temp path beside ``path`` (same suffix by default, so writers that pick a format by extension
    work); renamed to ``path`` when the block ends without an error, removed otherwise. ``tmp_dir`` puts the
    temp file there instead (on the same filesystem: a build keeps its temp files out of the dataset folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    where = path.parent if tmp_dir is None else Path(tmp_dir)
    where.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=where, prefix=TMP_PREFIX, suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "wb", *, tmp_dir: str | os.PathLike | None = None, **kwargs: Any
) -> Iterator[IO]:
    """A file handle on a temp file beside ``path`` (or in ``tmp_dir``), renamed to ``path`` when the block ends
    without an error."""
    with atomic_path(path, suffix="", tmp_dir=tmp_dir) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, tmp_dir: str | os.PathLike | None = None) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, tmp_dir=tmp_dir) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, tmp_dir: str | os.PathLike | None = None) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), tmp_dir=tmp_dir)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike, *, tmp_dir: str | os.PathLike | None = None) -> None:
    """Copy ``src`` to ``dst`` atomically."""
    with atomic_path(dst, tmp_dir=tmp_dir) as tmp:
        shutil.copyfile(src, tmp)
