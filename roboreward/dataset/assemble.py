"""Assembly: the shards' results into ``<split>/metadata.jsonl``, ``build_manifest.parquet`` and the card.

Idempotent, and streams over the shard files (two passes), so memory stays flat however many episodes the build
has; files no row names (a previous plan's, a killed build's temp files) are removed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from roboreward.atomic import atomic_open, atomic_path, atomic_write_text
from roboreward.dataset.card import FEATURES, CardLicense, dataset_card
from roboreward.dataset.plan import BUILD_DIR, FORMAT_VERSION, MANIFEST
from roboreward.dataset.reader import SPLITS, split_folder
from roboreward.dataset.split import check_no_leakage
from roboreward.types import COLUMNS

#: build_manifest.parquet: where each row is, what it says (the card's features but the video), the video's hash.
MANIFEST_SCHEMA = [
    ("split", "string"),
    ("row", "int64"),
    ("file_name", "string"),
    *[f for f in FEATURES if f[0] != "video"],
    ("video_sha256", "string"),
    ("video_bytes", "int64"),
]


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


def assemble(out: Path, shard_files: Sequence[Path], *, fingerprint: dict, license: CardLicense | None = None) -> dict:
    """Write metadata.jsonl per split, the manifest, the card; remove files no row names. Idempotent.

    Streams over the shard files (two passes), so memory stays flat however many episodes the build has. The
    videos' sizes and hashes come from the shard results (checked against the files on resume). Temp files go
    to ``.build/tmp``, so a killed assembly leaves none in the dataset's folders.
    """
    tmp = out / BUILD_DIR / "tmp"
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
    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in MANIFEST_SCHEMA])
    buffer: dict[str, list] = {name: [] for name, _ in MANIFEST_SCHEMA}
    with (
        atomic_open(out / MANIFEST, tmp_dir=tmp) as manifest,
        pq.ParquetWriter(manifest, schema, compression="zstd") as writer,
    ):

        def flush() -> None:
            if buffer["split"]:
                writer.write_table(pa.Table.from_pydict(buffer, schema=schema))
                for column in buffer.values():
                    column.clear()

        for split in SPLITS:
            sdir = out / split_folder(split)
            if not counts[split].examples:
                if sdir.is_dir():
                    shutil.rmtree(sdir)
                continue
            meta = sdir / "metadata.jsonl"
            for p in sorted(sdir.rglob("*")):
                if p.is_file() and p != meta and p.relative_to(sdir).as_posix() not in named[split]:
                    p.unlink()  # stale files of a previous plan, temp files of a killed build
            i = 0
            with atomic_open(meta, "w", encoding="utf-8", tmp_dir=tmp) as fh:
                for res in _shard_results(shard_files):
                    for ep in res["episodes"]:
                        if ep["split"] != split:
                            continue
                        for r in ep["rows"]:  # an episode's rows share its videos
                            values = {c: r.get(c) for c in COLUMNS}
                            fh.write(json.dumps(values, ensure_ascii=False) + "\n")
                            size, sha = ep["files"][r["file_name"]]
                            row = {"split": split, "row": i, **values, "video_sha256": sha, "video_bytes": size}
                            for name, _ in MANIFEST_SCHEMA:
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
        "card": {"license": (license or CardLicense()).as_dict()},
    }
    atomic_write_text(out / "README.md", dataset_card(report, license), tmp_dir=tmp)
    return report


def assemble_parts(out: Path, parts: Sequence[Path], *, license: CardLicense | None = None) -> dict:
    """Join the part folders of a build spread over machines (``build --num-shards N --shard-index i``) into a
    dataset in ``out``; returns the build report.

    Every part must come from the same plan (the same fingerprint) and together they must hold every shard: a
    missing part, a part of another plan or a shard whose files do not match its marker is refused, naming it.
    Videos are hard-linked where ``out`` shares the parts' filesystem, else copied. ``out`` becomes an ordinary
    build folder (re-running the same build into it reuses every shard).
    """
    from roboreward.dataset.build import LOCK
    from roboreward.dataset.plan import REPORT, check_out_dir, shard_path
    from roboreward.dataset.shards import marker_ok
    from roboreward.lock import output_lock

    if not parts:
        raise ValueError("give the part folders to assemble")
    plans = {}
    for part in map(Path, parts):
        plan_file = part / BUILD_DIR / "plan.json"
        if not plan_file.is_file():
            raise FileNotFoundError(f"{part}: not a part of a build (no {BUILD_DIR}/plan.json)")
        plans[part] = json.loads(plan_file.read_text(encoding="utf-8"))
    first_part, first = next(iter(plans.items()))
    n = first["part"]["num_shards"]
    by_index: dict[int, Path] = {}
    for part, plan in plans.items():
        if plan["fingerprint"] != first["fingerprint"] or plan["part"]["num_shards"] != n:
            raise ValueError(f"{part} is a part of another build than {first_part} (different arguments or sources)")
        i = plan["part"]["shard_index"]
        if i in by_index:
            raise ValueError(f"{part} and {by_index[i]} are both part {i} of {n}")
        by_index[i] = part
    missing = sorted(set(range(n)) - set(by_index))
    if missing:
        raise ValueError(f"parts {missing} of {n} are missing (give every --shard-index folder)")
    target = out.resolve()
    for part in plans:
        if target == part.resolve() or part.resolve() in target.parents:
            raise ValueError(f"--out {out} is inside the part {part}: assemble into another folder")
    check_out_dir(out)
    with output_lock(out, "roboreward assemble", name=LOCK):
        tmp = out / BUILD_DIR / "tmp"
        shard_files = []
        for index, key in first["shards"]:
            part = by_index[index % n]
            marker = shard_path(part, index, key)
            if not marker.is_file() or not marker_ok(part, marker):
                raise ValueError(f"{part}: shard {index} is unfinished or its files changed: re-run that part's build")
            result = json.loads(marker.read_text(encoding="utf-8"))
            for ep in result["episodes"]:
                for name, (size, _) in ep["files"].items():
                    folder = split_folder(ep["split"])
                    src, dst = part / folder / name, out / folder / name
                    if dst.is_file() and dst.stat().st_size == size and os.path.samefile(src, dst):
                        continue
                    _link_or_copy(src, dst, tmp)
            dst_marker = shard_path(out, index, key)
            _link_or_copy(marker, dst_marker, tmp)
            shard_files.append(dst_marker)
        plan = {**first, "part": {"num_shards": 1, "shard_index": 0}}
        atomic_write_text(out / BUILD_DIR / "plan.json", json.dumps(plan, indent=2) + "\n", tmp_dir=tmp)
        report = assemble(out, shard_files, fingerprint=first["config"], license=license)
        report["assembled_from"] = [str(p) for p in plans]
        atomic_write_text(out / REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n", tmp_dir=tmp)
    return report


def _link_or_copy(src: Path, dst: Path, tmp: Path) -> None:
    """Hard-link ``src`` at ``dst`` (atomically), or copy it where a link cannot be made (another filesystem)."""
    with atomic_path(dst, tmp_dir=tmp) as path:
        path.unlink()
        try:
            os.link(src, path)
        except OSError:
            shutil.copyfile(src, path)
