"""Score many (video, instruction) items into a resumable results file.

The one batch loop of the package (``roboreward score`` on many videos, ``roboreward annotate``, the benchmark
runner): items go to the scorer ``batch_size`` at a time; a batch that fails is scored again one by one so one bad
video only costs its own row; finished rows are appended to a :class:`~roboreward.evaluation.results.ResultsFile`
(flushed per batch), so a re-run scores only the keys that have no row yet. Failures go to the results file's
errors list; many failures in a row stop the run (a scorer that is down) with :class:`ScoringError`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roboreward.sampling import SAMPLING_KEYS
from roboreward.types import RewardOutput, Scorer, VideoInput


class ScoringError(RuntimeError):
    """A batch run that cannot go on (a scorer that keeps failing, a scorer that answers the wrong count)."""


@dataclass
class ScoreItem:
    """One thing to score: ``key`` (unique in its results file), the video and instruction, and ``fields``: the
    extra columns of its row (file name, episode index, label, ...).

    ``load``, when given, is called just before scoring and returns ``(video, instruction)``: episodes that are
    expensive to materialise (decoded frames) are loaded one batch at a time. Its errors become the item's error.
    """

    key: str
    video: VideoInput | None = None
    instruction: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    load: Callable[[], tuple[VideoInput, str]] | None = None


@dataclass
class BatchRun:
    """What one run did: rows scored now, rows found from an earlier run, items that failed, and the time."""

    scored: int = 0
    reused: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)


def result_row(item: ScoreItem, out: RewardOutput, model: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The results-file row of a scored item (an unparseable API answer has ``score`` None)."""
    return {
        "key": item.key,
        **item.fields,
        "score": out.score if out.parsed else None,
        "probs": out.probs,
        "expected": out.expected,
        "parsed": out.parsed,
        "raw_text": out.raw_text,
        "model": model,
        **{k: settings.get(k) for k in SAMPLING_KEYS},
    }


class _LoadFailed(Exception):
    """An item's ``load`` raised (kept as the item's outcome: kind ``episode``)."""


def _error_kind(exc: BaseException) -> str:
    from roboreward.video import VideoDecodeError

    if isinstance(exc, _LoadFailed):
        return "episode"
    return "video" if isinstance(exc, VideoDecodeError) else "scorer"


def _materialise(items: Sequence[ScoreItem]) -> list[tuple[VideoInput, str] | BaseException]:
    out: list[tuple[VideoInput, str] | BaseException] = []
    for item in items:
        if item.load is None:
            out.append((item.video, item.instruction))  # type: ignore[arg-type]
            continue
        try:
            out.append(item.load())
        except Exception as exc:  # a bad episode costs its own row only
            out.append(_LoadFailed(str(exc)))
    return out


def score_chunk(scorer: Scorer, pairs: Sequence[tuple[VideoInput, str]]) -> list[RewardOutput | BaseException]:
    """Outputs for ``pairs`` in one ``score_batch`` call; when it fails, each pair alone (its exception kept)."""
    try:
        outs: list[Any] = list(scorer.score_batch([v for v, _ in pairs], [t for _, t in pairs]))
    except KeyboardInterrupt:
        raise
    except Exception:  # isolate the bad item(s): score this batch one by one
        outs = []
        for video, instruction in pairs:
            try:
                outs.append(scorer.score(video, instruction))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                outs.append(exc)
        return outs
    if len(outs) != len(pairs):
        name = getattr(scorer, "name", type(scorer).__name__)
        raise ScoringError(f"{name}: score_batch returned {len(outs)} outputs for {len(pairs)} inputs")
    return outs


def score_items(
    scorer: Scorer,
    items: Sequence[ScoreItem],
    results: Any,
    *,
    batch_size: int = 8,
    settings: dict[str, Any] | None = None,
    max_consecutive_failures: int = 20,
    show_progress: bool = True,
    desc: str | None = None,
) -> BatchRun:
    """Score the items that ``results`` (a :class:`~roboreward.evaluation.results.ResultsFile`) has no row for,
    appending each finished batch; this run's failures replace the results file's errors list."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    keys = [it.key for it in items]
    seen: set[str] = set()
    for k in keys:
        if k in seen:
            raise ValueError(f"key {k!r} appears more than once: every item needs its own key")
        seen.add(k)
    name = str(getattr(scorer, "name", "") or type(scorer).__name__)
    settings = settings or {}
    done = results.open_for_append()
    todo = [it for it in items if it.key not in done]
    run = BatchRun(reused=len(items) - len(todo))
    consecutive = 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=desc or f"scoring {name}", unit="video", disable=not show_progress or not todo)
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            loaded = _materialise(chunk)
            ready = [i for i, x in enumerate(loaded) if not isinstance(x, BaseException)]
            outs: list[Any] = list(loaded)
            if ready:
                scored = score_chunk(scorer, [loaded[i] for i in ready])  # type: ignore[misc]
                for i, out in zip(ready, scored, strict=True):
                    outs[i] = out
            good, bad = [], []
            for item, out in zip(chunk, outs, strict=True):
                if isinstance(out, BaseException):
                    bad.append({"key": item.key, **item.fields, "error": str(out), "kind": _error_kind(out)})
                else:
                    good.append(result_row(item, out, name, settings))
            results.append(good)
            run.scored += len(good)
            run.failed += len(bad)
            run.errors.extend(bad)
            consecutive = 0 if good else consecutive + len(bad)
            bar.update(len(chunk))
            if consecutive >= max_consecutive_failures:
                raise ScoringError(
                    f"{name}: {consecutive} items in a row failed (last: {bad[-1]['error']}); stopping. "
                    f"Finished rows are kept in {results.path}; re-run to resume."
                )
    finally:
        bar.close()
        run.seconds = time.perf_counter() - t0
        results.write_errors(run.errors, keys=keys)
    return run


def write_parquet(
    rows: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
    schema: Sequence[tuple[str, str]] | None = None,
) -> Path:
    """Write ``rows`` (dicts with the same columns) as one parquet file, atomically; ``metadata`` goes into the
    schema metadata as JSON under ``roboreward``. ``schema`` ((name, arrow type name) pairs) fixes the columns
    and their types; otherwise the columns are every key of any row (missing ones null) and the types are
    inferred. Rows that do not fit name the problem in the error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roboreward.atomic import atomic_path

    path = Path(path)
    try:
        arrow_schema = pa.schema([(n, pa.type_for_alias(t)) for n, t in schema]) if schema else None
        columns = [n for n, _ in schema] if schema else list(dict.fromkeys(k for r in rows for k in r))
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows], schema=arrow_schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"{path}: the rows cannot form one table ({exc})") from None
    if metadata:
        table = table.replace_schema_metadata({"roboreward": json.dumps(metadata, default=str)})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def open_results(path: str | os.PathLike, settings: dict[str, Any], keys: Sequence[str] = SAMPLING_KEYS) -> Any:
    """The :class:`~roboreward.evaluation.results.ResultsFile` at ``path``, repaired after a kill, refusing
    (``SettingsMismatchError``) when its rows were made with other ``settings`` (compared on ``keys``: the frame
    sampling); records ``settings``."""
    from roboreward.evaluation import ResultsFile

    results = ResultsFile(path)
    done = results.open_for_append()
    results.check_settings(settings, keys, has_rows=bool(done))
    return results


@dataclass
class ScoreFiles:
    """Where :func:`score_to_files` wrote (``jsonl`` with ``.settings.json`` / ``.errors.jsonl`` beside it, and
    ``parquet``) and what the run did."""

    jsonl: Path
    parquet: Path | None
    errors: Path
    run: BatchRun


def score_to_files(
    scorer: Scorer,
    items: Sequence[ScoreItem],
    out: str | os.PathLike,
    *,
    batch_size: int = 8,
    show_progress: bool = True,
) -> ScoreFiles:
    """Score ``items`` into the results file ``out`` (``.jsonl``; resumed when it exists and was made with the same
    frame sampling, refused otherwise), then write all its rows as ``<out>.parquet`` (in the file's order)."""
    from roboreward.scoring.common import scorer_settings

    settings = scorer_settings(scorer)
    results = open_results(out, settings)
    run = score_items(scorer, items, results, batch_size=batch_size, settings=settings, show_progress=show_progress)
    rows = list(results.read().values())  # every row of the file, also those of earlier runs on other inputs
    parquet = write_parquet(rows, results.path.with_suffix(".parquet"), settings) if rows else None
    return ScoreFiles(results.path, parquet, results.errors_path, run)
