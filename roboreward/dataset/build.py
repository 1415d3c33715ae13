"""Build a RoboReward dataset in the released, Hub-native layout (datasets' ``videofolder`` convention).

Pipeline: list episodes from the sources -> sample per sub-dataset -> split by episode group
(:mod:`~roboreward.dataset.plan`) -> process shards (:mod:`~roboreward.dataset.shards`: load + validate an
episode, copy or encode its video, cut temporal clips, optional LM relabeling, in
:mod:`~roboreward.dataset.episode`) -> assemble (:mod:`~roboreward.dataset.assemble`)::

    <out>/README.md                     dataset card: YAML configs/features + counts per split/source/kind/label
    <out>/<split>/metadata.jsonl        file_name, task, reward + our columns (roboreward.types.Example)
    <out>/<split>/<source>/<...>.mp4    videos (clips: <episode>_attempt_<n>_score_<1-4>.mp4)
    <out>/build_manifest.parquet        one row per example with the video's sha256 (an index of the build)
    <out>/build_report.json             counts, skipped episodes with their errors, relabel notes, timing
    <out>/.build/                       shard results and done markers (resume state; not part of the dataset)

Shards are written atomically (temp file + rename, temp files in ``.build/tmp``); a shard's result file is its
done marker and records each video's size and sha256, so a killed build re-run with the same arguments checks the
finished shards against their files, redoes the unfinished or mismatching ones, and the final assembly is
idempotent. One build writes into a folder at a time (:mod:`roboreward.lock`). Past one machine,
``num_shards`` / ``shard_index`` build one slice of the same deterministic plan into a part folder each, and
:func:`~roboreward.dataset.assemble.assemble_parts` joins the parts. Rows of a
relabeled episode (counterfactual / paraphrase) reuse the episode's video file: datasets 5.x ``videofolder``
reads metadata row by row, so several rows may name the same mp4.

Publish the folder with the Hub client (no uploader here)::

    hf upload <user>/<name> <out> . --repo-type dataset --exclude ".build/*" --exclude ".cache/*"
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from roboreward.atomic import atomic_write_text
from roboreward.dataset.assemble import assemble
from roboreward.dataset.card import CardLicense
from roboreward.dataset.clip import parse_clips
from roboreward.dataset.episode import EpisodeSettings, Relabeler
from roboreward.dataset.media import VideoFormat
from roboreward.dataset.plan import (
    BUILD_DIR,
    FORMAT_VERSION,
    REPORT,
    check_out_dir,
    cut_shards,
    fingerprint_hash,
    options_dict,
    plan_episodes,
    resolve_sources,
    shard_path,
)
from roboreward.dataset.shards import marker_ok, run_shards
from roboreward.dataset.split import parse_fractions
from roboreward.lock import output_lock
from roboreward.sources import ListingProblem, ReaderOptions
from roboreward.video import PIXEL_BUDGET

#: The lock file of a build folder (inside ``.build/``, so ``hf upload --exclude ".build/*"`` leaves it out).
LOCK = f"{BUILD_DIR}/lock"


@dataclass
class BuildSummary:
    """What :func:`build_dataset` did (``part`` = (shard index, number of shards) for one slice of a build)."""

    out: Path
    counts: dict[str, int]
    episodes_planned: int
    episodes_built: int
    episodes_skipped: int
    shards_total: int
    shards_reused: int
    seconds: float
    report: dict[str, Any] = field(repr=False, default_factory=dict)
    shards_redone: int = 0
    part: tuple[int, int] | None = None

    @property
    def episodes_per_s(self) -> float:
        done = self.episodes_planned if self.shards_reused < self.shards_total else 0
        return done / self.seconds if self.seconds > 0 else 0.0


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
    options: ReaderOptions | None = None,
    video: VideoFormat | None = None,
    pixel_budget: int | None = PIXEL_BUDGET,
    workers: int = 1,
    shard_size: int = 8,
    num_shards: int = 1,
    shard_index: int = 0,
    relabeler: Relabeler | None = None,
    relabel_config: dict | None = None,
    license: CardLicense | None = None,
    show_progress: bool = True,
) -> BuildSummary:
    """Build (or resume building) a dataset from ``sources`` into ``out``; returns a :class:`BuildSummary`.

    ``sources``: ``"sample"`` or ``"<reader>:<path>"`` with reader in lerobot | rlds | roboarena | released.
    ``clip_fractions``: e.g. ``"0.1:1,0.3:2,0.5:3,0.7:4"`` (the default) or ``"none"``.
    ``split_fractions``: train, validation, test (default 0.8, 0.1, 0.1), split by episode group.
    ``options``: reader options (``camera`` and ``progress_bins`` are shorthands for its fields).
    ``video``: the output video format (default: the release's, at most 10 fps and 320 px, H.264);
    ``pixel_budget``: width x height x frames of a source video above which the episode is refused unread.
    ``relabeler``: a callable ``(episode, video_path) -> RelabelResult`` (see :mod:`roboreward.relabel`);
    ``relabel_config`` identifies it in the build fingerprint (so changing it rebuilds the shards).
    ``license``: what the dataset card declares (default ``other``, the sources' own licenses); card only.
    ``workers``: shards in parallel: processes without a relabeler, threads of this process with one (episodes
    then wait on the LM concurrently; the output is the same for any ``workers``).
    ``num_shards`` / ``shard_index``: build only the plan's shards whose index is ``shard_index`` modulo
    ``num_shards`` into ``out`` (one part of a build spread over machines), without assembling.
    """
    t_start = time.perf_counter()
    out = Path(out)
    check_out_dir(out)
    clips = [list(c) for c in parse_clips(clip_fractions)]
    fractions = parse_fractions(split_fractions)
    if options is None:
        options = ReaderOptions(camera=camera, progress_bins=tuple(float(b) for b in progress_bins))
    options = replace(options, decode_segments=False)  # LeRobot v3 segments, RLDS images: streamed, not decoded whole
    fmt = video or VideoFormat()
    from roboreward.rubric import progress_to_label

    progress_to_label(50, options.progress_bins)  # validates the bins early
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index must be in [0, --num-shards), got {shard_index} of {num_shards}")
    specs = resolve_sources(sources)
    if not specs:
        raise ValueError("give at least one source")
    refuse_out_in_sources(out, specs)

    with output_lock(out, "roboreward build", name=LOCK):
        tmp = out / BUILD_DIR / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # temp files of a killed build (we hold the lock: none are live)
        # 1. list, sample, split
        listing: list[ListingProblem] = []  # what the sources could not list: named in the report, not fatal
        plan = plan_episodes(
            specs, options, episodes_per_source=episodes_per_source, fractions=fractions, seed=seed, problems=listing
        )
        fingerprint = {
            "format": FORMAT_VERSION,
            "sources": specs,
            "seed": seed,
            "episodes_per_source": episodes_per_source,
            "clips": clips,
            "split_fractions": list(fractions),
            "options": options_dict(options),
            "video": fmt.as_dict(),
            "pixel_budget": pixel_budget,
            "shard_size": shard_size,
            "relabel": relabel_config if relabeler is not None else None,
        }
        fp = fingerprint_hash(fingerprint)
        settings = EpisodeSettings(options=options, clips=clips, video=fmt, pixel_budget=pixel_budget, tmp_dir=tmp)
        tasks = cut_shards(plan, out, fp=fp, shard_size=shard_size, settings=settings)
        plan_file = {
            "fingerprint": fp,
            "config": fingerprint,
            "shards": [[t.index, t.key] for t in tasks],
            "part": {"num_shards": num_shards, "shard_index": shard_index},
        }
        (out / BUILD_DIR / "shards").mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / BUILD_DIR / "plan.json", json.dumps(plan_file, indent=2) + "\n", tmp_dir=tmp)
        mine = [t for t in tasks if t.index % num_shards == shard_index]
        pending, redone = [], 0
        for t in mine:  # a done marker counts only when the files it names are there, as it recorded them
            marker = shard_path(out, t.index, t.key)
            if marker.is_file():
                if marker_ok(out, marker):
                    continue
                marker.unlink()
                redone += 1
            pending.append(t)
        reused = len(mine) - len(pending)

        # 2. shards
        run_shards(
            pending,
            relabeler,
            workers,
            show_progress,
            reused_episodes=sum(len(t.items) for t in mine) - sum(len(t.items) for t in pending),
        )
        if num_shards > 1:
            built = skipped = 0
            for t in mine:
                result = json.loads(shard_path(out, t.index, t.key).read_text(encoding="utf-8"))
                built, skipped = built + len(result["episodes"]), skipped + len(result["skipped"])
            return BuildSummary(
                out=out,
                counts={},
                episodes_planned=sum(len(t.items) for t in mine),
                episodes_built=built,
                episodes_skipped=skipped,
                shards_total=len(mine),
                shards_reused=reused,
                seconds=time.perf_counter() - t_start,
                shards_redone=redone,
                part=(shard_index, num_shards),
            )

        # 3. assemble
        report = assemble(
            out, [shard_path(out, t.index, t.key) for t in tasks], fingerprint=fingerprint, license=license
        )
        report["listing_skipped"] = [p.as_skipped() for p in listing]
        seconds = time.perf_counter() - t_start
        report["timing"] = {
            "seconds": round(seconds, 3),
            "shards_reused": reused,
            "shards_redone": redone,
            "shards_total": len(tasks),
            "workers": workers,
        }
        atomic_write_text(out / REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n", tmp_dir=tmp)
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
        shards_redone=redone,
    )


def refuse_out_in_sources(out: Path, specs: Sequence[str]) -> None:
    """Refuse an ``out`` that is a source folder or inside one (assembly removes files no row names: it would
    eat the source, and a re-split in place would read what it is rewriting)."""
    target = out.resolve()
    for spec in specs:
        reader, sep, path = spec.partition(":")
        if not sep:
            continue
        src = Path(path).resolve()
        if target == src or src in target.parents:
            raise ValueError(
                f"--out {out} is {'the source' if target == src else 'inside the source'} {spec}: write the "
                "dataset to another folder (to re-split a built dataset, give it as released:<folder> and a new --out)"
            )
