"""On-disk cache of LM calls: one JSON file per content key, written atomically, no pickle.

The key is the SHA-256 of a canonical JSON document holding everything that determines an answer (model,
messages, generation settings and a hash of the video frames), so a re-run or a build resumed after a
kill replays every finished call from disk and makes only the calls that never completed. Files live at
``<dir>/<key[:2]>/<key>.json``; a half-written file never exists (written through
:func:`roboreward.atomic.atomic_write_text`), and a corrupt or foreign file is treated as a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.atomic import TMP_PREFIX, atomic_write_text

CACHE_VERSION = 1


def content_key(material: Any) -> str:
    """SHA-256 hex digest of ``material`` as canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def hash_frames(frames: np.ndarray, indices: Any = None, fps: float | None = None) -> str:
    """SHA-256 of the frame pixels (with shape and dtype), plus where they came from when given."""
    arr = np.ascontiguousarray(frames)
    h = hashlib.sha256()
    h.update(f"{arr.shape}|{arr.dtype}|".encode())
    h.update(arr.tobytes())
    if indices is not None:
        h.update(json.dumps([int(i) for i in indices]).encode())
    if fps is not None:
        h.update(f"|{float(fps):.6f}".encode())
    return h.hexdigest()


class LMCache:
    """A folder of finished LM calls keyed by :func:`content_key`. Safe across threads and processes."""

    #: Temp files older than this (seconds) are leftovers of a killed writer, removed when a cache is opened.
    STALE_TEMP_AGE = 3600.0

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)  # created on the first put
        self.sweep_temp_files()

    def sweep_temp_files(self, max_age: float | None = None) -> int:
        """Remove ``.tmp-*`` files a killed writer left behind (only old ones: a live writer in another process
        may be about to rename its own); returns how many went."""
        cutoff = time.time() - (self.STALE_TEMP_AGE if max_age is None else max_age)
        removed = 0
        for p in self.dir.glob(f"*/{TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed += 1
        return removed

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached answer text for ``key``, or None (missing, unreadable or from another format)."""
        p = self.path(key)
        try:
            record = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("version") != CACHE_VERSION or record.get("key") != key:
            return None
        text = record.get("text")
        return text if isinstance(text, str) else None

    def put(self, key: str, text: str, material: Any = None) -> Path:
        """Store ``text`` under ``key`` atomically; ``material`` (the key's inputs, minus pixels) is kept for
        inspection."""
        p = self.path(key)
        record = {"version": CACHE_VERSION, "key": key, "created": time.time(), "text": text, "inputs": material}
        atomic_write_text(p, json.dumps(record, ensure_ascii=False, default=str))
        return p

    def keys(self) -> set[str]:
        """Keys of every finished call in the cache."""
        return {p.stem for p in self.dir.glob("*/*.json") if not p.name.startswith(TMP_PREFIX)}

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.keys()))

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return len(self.keys())
