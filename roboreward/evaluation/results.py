"""Resumable results files: one JSON row per scored example, appended and flushed per batch.

A :class:`ResultsFile` is the predictions of one model (``<stem>.jsonl``), the settings that produced them
(``<stem>.settings.json``, checked before anything is appended) and the examples that failed in the last run
(``<stem>.errors.jsonl``). ``roboreward eval`` keeps one per model; ``roboreward score`` reuses it for its
output. A kill can leave a half-written last line: :meth:`ResultsFile.repair` drops it and
:meth:`ResultsFile.read` skips unreadable lines, so a re-run scores only what is missing and never duplicates a
row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


class SettingsMismatchError(RuntimeError):
    """Existing results were made with other settings (mixing them would give a meaningless number)."""


def read_jsonl_rows(path: Path, key: str = "key") -> dict[str, dict[str, Any]]:
    """Rows of a results jsonl by ``key`` (first row wins; unreadable lines are skipped: a kill can truncate
    the last one)."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and key in row:
                out.setdefault(row[key], row)
    return out


def repair_tail(path: Path) -> None:
    """Drop a partial last line (a kill mid-write) so appended rows start on a line of their own."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        fh.truncate(data.rfind(b"\n") + 1)


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Append ``rows`` as JSON lines, flushed and fsynced (a finished batch survives a kill); returns the count."""
    lines = [json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows]
    if not lines:
        return 0
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(lines))
        fh.flush()
        os.fsync(fh.fileno())
    return len(lines)


def settings_diff(old: dict[str, Any], new: dict[str, Any], keys: Sequence[str] | None = None) -> dict[str, tuple]:
    """``{key: (old, new)}`` for the ``keys`` (default: every key of either) whose values differ."""
    names = list(keys) if keys is not None else sorted(set(old) | set(new))
    return {k: (old.get(k), new.get(k)) for k in names if old.get(k) != new.get(k)}


class ResultsFile:
    """The predictions, settings and errors of one scorer in a results folder (see the module docstring);
    ``transform`` completes each row before it is written (the evaluation adds HELM's parsed answer)."""

    def __init__(
        self, path: str | os.PathLike, *, transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> None:
        self.path = Path(path)
        self.transform = transform
        if self.path.suffix != ".jsonl":
            raise ValueError(f"{self.path}: a results file must end in .jsonl")
        stem = self.path.name[: -len(".jsonl")]
        self.settings_path = self.path.with_name(stem + ".settings.json")
        self.errors_path = self.path.with_name(stem + ".errors.jsonl")

    def read(self) -> dict[str, dict[str, Any]]:
        """The stored rows by key."""
        return read_jsonl_rows(self.path)

    def open_for_append(self) -> dict[str, dict[str, Any]]:
        """Create the folder, drop a partial last line and return the rows already done."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        return self.read()

    def append(self, rows: Sequence[dict[str, Any]]) -> int:
        """Append finished rows (passed through ``transform`` when given; flushed and fsynced)."""
        return append_jsonl(self.path, [self.transform(r) for r in rows] if self.transform else rows)

    def read_settings(self) -> dict[str, Any] | None:
        """The recorded settings, or None when there is no settings file."""
        if not self.settings_path.is_file():
            return None
        try:
            data = json.loads(self.settings_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SettingsMismatchError(f"{self.settings_path}: unreadable settings file ({exc.msg})") from None
        if not isinstance(data, dict):
            raise SettingsMismatchError(f"{self.settings_path}: a settings file must hold a JSON object")
        return data

    def check_settings(
        self, settings: dict[str, Any], keys: Sequence[str] | None = None, *, has_rows: bool | None = None
    ) -> None:
        """Refuse when rows exist that were made with other ``settings`` (compared on ``keys``, default all),
        then record ``settings``."""
        if has_rows is None:
            has_rows = self.path.is_file() and self.path.stat().st_size > 0
        old = self.read_settings()
        if old is not None and has_rows:
            changed = settings_diff(old, settings, keys)
            if changed:
                diff = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items())
                raise SettingsMismatchError(
                    f"{self.path.parent}: existing predictions were made with other settings ({diff}); "
                    "use another --out folder or delete that model's files"
                )
        self.write_settings(settings)

    def write_settings(self, settings: dict[str, Any]) -> None:
        from roboreward.atomic import atomic_write_text

        self.settings_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.settings_path, json.dumps(settings, indent=2, default=str) + "\n")

    def write_errors(self, rows: Sequence[dict[str, Any]], *, keys: Sequence[str] | None = None) -> None:
        """This run's failures replace the previous list; with none, the file goes once every key in ``keys``
        has a row."""
        if rows:
            from roboreward.atomic import atomic_write_text

            atomic_write_text(self.errors_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        elif self.errors_path.exists():
            done = self.read()
            if keys is None or all(k in done for k in keys):
                self.errors_path.unlink()
