"""Write episode rewards back into datasets (``roboreward annotate``).

* A **LeRobot** dataset (v2.1 / v3.0 root with ``meta/info.json``) gets a parquet beside it, one row per episode
  keyed by ``episode_index``: ``task``, ``camera``, ``score``, ``p1``..``p5``, ``expected``, ``parsed``, the model
  and the frame sampling (the full scorer settings are in the parquet's schema metadata, key ``roboreward``).
  Default ``<root>/meta/rewards/<model>[.<camera>].parquet``, the dataset itself is not touched.
* A **built** RoboReward dataset gets new columns in every ``<split>/metadata.jsonl`` (``<prefix>score``,
  ``<prefix>p1``..``<prefix>p5``, ``<prefix>expected``; ``None`` where a video failed) and those columns in its
  card's features, with the settings in the card header (``roboreward_annotations``). A re-run of ``roboreward
  build`` rewrites the metadata, so annotate after building.

Both are resumable: scores go through a :class:`~roboreward.evaluation.results.ResultsFile` first (beside the
parquet, or under ``<root>/.cache/annotate`` for a built dataset, which the card's upload command excludes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roboreward.rubric import SCORES
from roboreward.sampling import SAMPLING_KEYS
from roboreward.scoring.batch import BatchRun, ScoreItem, open_results, score_items, write_parquet
from roboreward.scoring.common import Frames, is_frames, scorer_settings
from roboreward.types import Scorer, VideoInput

#: The probability columns, p1..p5.
PROB_COLUMNS: tuple[str, ...] = tuple(f"p{s}" for s in SCORES)
#: Columns of the LeRobot rewards parquet and their types.
LEROBOT_SCHEMA: tuple[tuple[str, str], ...] = (
    ("episode_index", "int64"),
    ("task", "string"),
    ("camera", "string"),
    ("score", "int64"),
    *((c, "double") for c in PROB_COLUMNS),
    ("expected", "double"),
    ("parsed", "bool"),
    ("model", "string"),
    ("fps", "double"),
    ("max_frames", "int64"),
    ("min_frames", "int64"),
    ("num_frames", "int64"),
)
ANNOTATE_WORK_DIR = Path(".cache") / "annotate"


@dataclass
class AnnotateResult:
    """What ``annotate`` wrote (``files``) and the scoring run of each split / dataset."""

    files: list[Path] = field(default_factory=list)
    runs: dict[str, BatchRun] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.runs.values())


def _slug(scorer: Scorer) -> str:
    from roboreward.evaluation import model_slug

    return model_slug(str(getattr(scorer, "name", "") or type(scorer).__name__))


def reward_columns(row: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``score``, ``p1``..``p5``, ``expected`` of a results row (all ``None`` without one), with ``prefix``."""
    row = row or {}
    probs = row.get("probs") or [None] * len(SCORES)
    return {
        f"{prefix}score": row.get("score"),
        **{f"{prefix}{c}": p for c, p in zip(PROB_COLUMNS, probs, strict=True)},
        f"{prefix}expected": row.get("expected"),
    }


# ------------------------------------------------------------------------------------------------------ LeRobot


def is_lerobot(path: Path) -> bool:
    """A LeRobot dataset root (``meta/info.json``)."""
    return (Path(path) / "meta" / "info.json").is_file()


def _lerobot_items(root: Path, camera: str | None) -> list[ScoreItem]:
    from roboreward.sources import ReaderOptions, list_source, load_episode

    options = ReaderOptions(camera=camera)
    refs = [r for r in list_source(f"lerobot:{root}", options) if Path(r.locator["root"]).resolve() == root.resolve()]
    if not refs:
        raise ValueError(f"{root}: the LeRobot dataset lists no episodes")
    items = []
    for ref in refs:
        ep = int(ref.locator["episode_index"])
        item = ScoreItem(str(ep), fields={"episode_index": ep})

        def load(ref: Any = ref, item: ScoreItem = item) -> tuple[VideoInput, str]:
            episode = load_episode(ref, options)
            item.fields.update(task=episode.instruction, camera=episode.meta.get("camera"))
            video = episode.video
            return (Frames(video, episode.fps) if is_frames(video) else video), episode.instruction

        item.load = load
        items.append(item)
    return items


def annotate_lerobot(
    root: str | Path,
    scorer: Scorer,
    *,
    out: str | Path | None = None,
    camera: str | None = None,
    batch_size: int = 8,
    show_progress: bool = True,
) -> AnnotateResult:
    """Score every episode of a LeRobot dataset and write ``<out>`` (default ``<root>/meta/rewards/<model>.parquet``)
    keyed by ``episode_index``; the resumable results (``.jsonl``) and settings sit beside it."""
    root = Path(root)
    if not is_lerobot(root):
        raise ValueError(f"{root}: not a LeRobot dataset root (no meta/info.json)")
    from roboreward.evaluation import model_slug

    name = _slug(scorer) + (f".{model_slug(camera)}" if camera else "")
    parquet = Path(out) if out is not None else root / "meta" / "rewards" / f"{name}.parquet"
    if parquet.suffix != ".parquet":
        raise ValueError(f"{parquet}: the output must be a .parquet file")
    settings = {**scorer_settings(scorer), "camera": camera}
    results = open_results(parquet.with_suffix(".jsonl"), settings, (*SAMPLING_KEYS, "camera"))
    items = _lerobot_items(root, camera)
    run = score_items(scorer, items, results, batch_size=batch_size, settings=settings, show_progress=show_progress)
    done = results.read()
    rows = []
    for item in items:
        row = done.get(item.key)
        if row is None:
            continue
        rows.append(
            {
                "episode_index": int(row["episode_index"]),
                "task": row.get("task"),
                "camera": row.get("camera"),
                **reward_columns(row),
                "parsed": row.get("parsed"),
                "model": row.get("model"),
                **{k: row.get(k) for k in SAMPLING_KEYS},
            }
        )
    rows.sort(key=lambda r: r["episode_index"])
    result = AnnotateResult(runs={root.name: run})
    if rows:
        result.files.append(write_parquet(rows, parquet, metadata=settings, schema=LEROBOT_SCHEMA))
    return result


# ------------------------------------------------------------------------------------------------ built dataset


def _write_metadata(meta: Path, rows: Sequence[dict[str, Any]]) -> None:
    from roboreward.atomic import atomic_open

    with atomic_open(meta, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _annotate_card(readme: Path, columns: dict[str, str], prefix: str, settings: dict[str, Any]) -> None:
    """Add ``columns`` (name -> dtype) to the card's features and record the settings in its header."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(readme)
    data = card.data
    for features in [c.get("features") for c in data.get("configs") or []] + [
        (data.get("dataset_info") or {}).get("features")
    ]:
        if isinstance(features, list):
            names = {f.get("name") for f in features if isinstance(f, dict)}
            features.extend({"name": n, "dtype": t} for n, t in columns.items() if n not in names)
    notes = dict(data.get("roboreward_annotations") or {})
    notes[prefix] = {k: settings.get(k) for k in ("scorer", "model", *SAMPLING_KEYS) if k in settings}
    data.roboreward_annotations = notes
    card.save(readme)


def annotate_dataset(
    root: str | Path,
    scorer: Scorer,
    *,
    splits: Sequence[str] | None = None,
    prefix: str = "pred_",
    batch_size: int = 8,
    show_progress: bool = True,
) -> AnnotateResult:
    """Score every row of the ``splits`` (default: all) of a built dataset and add the reward columns.

    Every split gets the columns (``datasets`` wants one set of columns across a folder's metadata files): the
    splits not scored keep the values an earlier run gave them, or ``None`` (then ``warnings`` says that
    ``datasets.load_dataset`` will refuse the folder until those splits are annotated too). The metadata files
    are rewritten only after all scoring finished, so a run that stops leaves them as they were (a re-run resumes
    the scoring).
    """
    from roboreward.dataset import available_splits, iter_metadata, read_split, split_dir
    from roboreward.evaluation import example_keys
    from roboreward.scoring.inputs import dataset_items

    root = Path(root)
    if not prefix.replace("_", "").isalnum() or not prefix.isascii():
        raise ValueError(f"prefix {prefix!r}: use letters, digits and underscores (e.g. pred_)")
    columns = {**{f"{prefix}score": "int64"}, **{f"{prefix}{c}": "float64" for c in (*PROB_COLUMNS, "expected")}}
    every = available_splits(root)
    if not every:
        raise ValueError(f"{root}: not a built dataset (no <split>/metadata.jsonl)")
    chosen = list(dict.fromkeys(splits or every))
    unknown = [s for s in chosen if s not in every]
    if unknown:
        raise ValueError(f"{root}: no split(s) {unknown}; splits found: {every}")
    settings = scorer_settings(scorer)
    result = AnnotateResult()
    scored: dict[str, dict[str, dict[str, Any]]] = {}
    for split in chosen:
        results = open_results(root / ANNOTATE_WORK_DIR / f"{split}.{_slug(scorer)}.jsonl", settings)
        result.runs[split] = score_items(
            scorer,
            dataset_items(root, split),
            results,
            batch_size=batch_size,
            settings=settings,
            show_progress=show_progress,
            desc=f"annotating {split}",
        )
        scored[split] = results.read()
    empty = []
    for split in every:
        meta = split_dir(root, split) / "metadata.jsonl"
        raw = [row for _, row in iter_metadata(meta)]
        if split in scored:
            keys = example_keys(read_split(root, split, check_files=False))
            values = [reward_columns(scored[split].get(key), prefix) for key in keys]
        else:
            values = [{c: row.get(c) for c in columns} for row in raw]
        if all(v[f"{prefix}score"] is None for v in values):
            empty.append(split)
        rows = [
            {**{k: v for k, v in row.items() if k not in columns}, **new} for row, new in zip(raw, values, strict=True)
        ]
        _write_metadata(meta, rows)
        result.files.append(meta)
    readme = root / "README.md"
    if readme.is_file():
        _annotate_card(readme, columns, prefix, settings)
        result.files.append(readme)
    if empty:  # datasets infers each metadata file's column types and wants them equal across the folder
        result.warnings.append(
            f"split(s) {empty} have no {prefix}* rewards yet: datasets.load_dataset opens the folder once every "
            "split has them (annotate without --split, or those splits too)"
        )
    return result
