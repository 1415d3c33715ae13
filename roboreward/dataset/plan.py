"""The build plan: which episodes, in which split, in which resumable shard, under which fingerprint.

The plan depends only on the build's arguments and the sources' listings (sorted by split, source, episode
id), so every run with the same arguments cuts the same shards with the same keys; a shard's key hashes the
build fingerprint and its episodes, so its result file (the done marker) is reused only by an identical plan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from roboreward.dataset.episode import EpisodeSettings
from roboreward.dataset.reader import SPLITS
from roboreward.dataset.split import assign_splits
from roboreward.sources import (
    EpisodeRef,
    ListingProblem,
    ReaderOptions,
    list_source,
    parse_source_spec,
    sample_per_source,
)

FORMAT_VERSION = 2
BUILD_DIR = ".build"
MANIFEST = "build_manifest.parquet"
REPORT = "build_report.json"


@dataclass
class ShardTask:
    """One resumable unit of work: a few episodes with their split, and what a worker needs to build them."""

    index: int
    key: str
    out: str
    items: list[tuple[dict, str]]  # (EpisodeRef dict, split)
    settings: EpisodeSettings


def check_out_dir(out: Path) -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder that is not a build (no ``.build/``)."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / BUILD_DIR).is_dir():
        raise FileExistsError(f"--out {out} is not empty and is not a RoboReward build folder (no {BUILD_DIR}/)")


def shard_path(out: Path, index: int, key: str) -> Path:
    """The result file (done marker) of shard ``index`` with ``key``."""
    return out / BUILD_DIR / "shards" / f"shard-{index:05d}-{key}.json"


def options_dict(options: ReaderOptions) -> dict:
    """``options`` as JSON-able plain data (the fingerprint and the shard tasks carry it)."""
    d = asdict(options)
    d["progress_bins"] = list(d["progress_bins"])
    return d


def resolve_sources(sources: Sequence[str]) -> list[str]:
    """Source specs with absolute paths (``sample`` stays as it is)."""
    out = []
    for spec in sources:
        reader, path = parse_source_spec(spec)
        out.append("sample" if path is None else f"{reader}:{path.resolve()}")
    return out


def plan_episodes(
    specs: Sequence[str],
    options: ReaderOptions,
    *,
    episodes_per_source: int | None,
    fractions: Sequence[float],
    seed: int,
    problems: list[ListingProblem] | None = None,
) -> list[tuple[EpisodeRef, str]]:
    """List the sources, sample per sub-dataset, split by episode group: (ref, split) in plan order.

    With a ``problems`` list, what a source cannot list (a bad ``info.json``, a truncated record file, ...) is
    recorded there, named, and skipped; without one it raises."""
    refs: list[EpisodeRef] = []
    for spec in specs:
        refs.extend(list_source(spec, options, problems))
    seen: set[tuple[str, str]] = set()
    for r in refs:
        if (r.source, r.id) in seen:
            raise ValueError(f"episode {r.source}/{r.id} is listed twice (the same source given twice?)")
        seen.add((r.source, r.id))
    refs = sample_per_source(refs, episodes_per_source, seed)
    split_of = assign_splits(((r.source, r.group) for r in refs), fractions, seed)
    order = {s: i for i, s in enumerate(SPLITS)}
    return sorted(((r, split_of[r.group]) for r in refs), key=lambda x: (order[x[1]], x[0].source, x[0].id))


def fingerprint_hash(fingerprint: dict) -> str:
    """The SHA-256 of the fingerprint's canonical JSON."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


def cut_shards(
    plan: Sequence[tuple[EpisodeRef, str]],
    out: Path,
    *,
    fp: str,
    shard_size: int,
    settings: EpisodeSettings,
) -> list[ShardTask]:
    """Cut the plan into shards of ``shard_size`` episodes, each keyed by the fingerprint and its episodes."""
    tasks: list[ShardTask] = []
    for i in range(0, len(plan), shard_size):
        items = [(r.to_dict(), s) for r, s in plan[i : i + shard_size]]
        key = hashlib.sha256((fp + json.dumps([(d["source"], d["id"], s) for d, s in items])).encode()).hexdigest()
        tasks.append(ShardTask(i // shard_size, key[:16], str(out), items, settings))
    return tasks
