"""What a results file is keyed by: the model (spec, revision, weights hash where local) and the dataset.

Predictions are only ever appended to, or reused from, a results file whose recorded identity and settings
equal the run's (:meth:`roboreward.evaluation.results.ResultsFile.check_settings`); a changed model, dataset or
setting under the same model name is refused instead of being mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from roboreward.atomic import atomic_write_text

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja")
_CHUNK = 8 * 2**20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_fingerprint(folder: Path, cache: Path | None = None) -> str:
    """sha256 over the names and contents of a model folder's weight, config and tokenizer files. File hashes
    are cached in ``cache`` (JSON) by path, size and mtime, so an unchanged 16 GB checkpoint is hashed once."""
    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            known = {}
    total = hashlib.sha256()
    changed = False
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES):
        st = f.stat()
        key = f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}"
        digest = known.get(key)
        if digest is None:
            digest = known[key] = _sha256(f)
            changed = True
        total.update(f"{f.relative_to(folder).as_posix()}\0{digest}\n".encode())
    if cache is not None and changed:
        atomic_write_text(cache, json.dumps(known, indent=0, sort_keys=True))
    return total.hexdigest()


def model_identity(spec: str | None, *, cache: Path | None = None) -> dict[str, Any]:
    """``{"revision": ..., "weights_sha256": ...}`` of a scorer spec, from what is on this machine: a local
    folder (or ``tiny``) is hashed; a Hub id gives the commit of its cached snapshot (None when not cached yet);
    an API model (``openai:`` / ``vllm:``) and a scorer object have neither."""
    out: dict[str, Any] = {"revision": None, "weights_sha256": None}
    if not spec or spec.split(":", 1)[0] in ("openai", "vllm"):
        return out
    from roboreward.scoring import resolve_builtin

    try:
        builtin = resolve_builtin(spec)
    except ValueError:
        builtin = None
    local = builtin if builtin is not None else Path(spec).expanduser()
    if local.is_dir():
        out["weights_sha256"] = folder_fingerprint(local, cache)
        return out
    try:
        from huggingface_hub import snapshot_download

        snapshot = Path(snapshot_download(spec, local_files_only=True, allow_patterns=["config.json"]))
        out["revision"] = snapshot.name
    except Exception:  # not cached, not a repo id: unknown until the model is loaded
        pass
    return out


def dataset_identity(root: str | os.PathLike, split: str) -> dict[str, Any]:
    """The split's ``metadata.jsonl`` by content (sha256) and row count: the same examples with the same labels,
    wherever the folder lives."""
    from roboreward.dataset import split_dir

    meta = split_dir(Path(root), split) / "metadata.jsonl"
    data = meta.read_bytes()
    return {"dataset_sha256": hashlib.sha256(data).hexdigest(), "dataset_lines": data.count(b"\n")}
