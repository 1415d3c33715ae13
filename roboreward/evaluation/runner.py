"""Benchmark runner: score a split with several reward models, keep resumable predictions, write a leaderboard.

    roboreward eval --split test --model teetone/RoboReward-4B --model openai:gpt-5-mini@https://... --out results

Output folder::

    <out>/predictions/<model>.jsonl          one row per scored example (appended and flushed per batch)
    <out>/predictions/<model>.settings.json  what produced them: model, fps, max_frames, ... (checked on resume)
    <out>/predictions/<model>.errors.jsonl   examples that failed (bad video, API down): retried on the next run
    <out>/leaderboard.md / .csv / .json      metrics per model (macro MAE first) and per-subset MAE
    <out>/leaderboard.png                    bar charts of MAE / macro MAE and win rates
    <out>/confusion_<model>.png              one confusion matrix per model

    <out>/.lock                              the one writer of the folder (PID, host)

An interrupted run (Ctrl-C, kill, a crashing scorer) re-run with the same arguments scores only the examples
that have no prediction yet; a truncated last line from a kill is dropped. A results file is keyed by the model
(spec, revision, weights hash), the dataset's content and every setting of the protocol: a run that differs is
refused rather than mixed in. Under the ``roboreward`` protocol the leaderboard compares models on the examples
that every model has a prediction for (``n`` in the table; ``missing`` counts the others); under ``helm`` each
model on the instances it answered (see :mod:`roboreward.evaluation.protocols`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roboreward.dataset import DEFAULT_REPO, read_split, resolve_dataset
from roboreward.evaluation import helm
from roboreward.evaluation.curves import curve_split, voc_keys
from roboreward.evaluation.identity import dataset_identity, model_identity
from roboreward.evaluation.protocols import EvalProtocol, helm_row_answer, load_protocol_scorer, make_protocol
from roboreward.evaluation.results import ResultsFile, SettingsMismatchError, read_jsonl_rows
from roboreward.lock import OutputLockedError, output_lock
from roboreward.sampling import SAMPLING_KEYS
from roboreward.types import Example, Scorer


class EvaluationError(RuntimeError):
    """A run that cannot go on (settings changed under existing predictions, a scorer that keeps failing)."""


def model_slug(name: str) -> str:
    """A file-name-safe form of a model name or spec."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return slug[-120:] or "model"


def parse_model_arg(arg: str) -> tuple[str, str]:
    """``"name=spec"`` -> (name, spec); a bare spec is its own name (``"tiny"``, ``"teetone/RoboReward-4B"``)."""
    name, sep, spec = arg.partition("=")
    if sep and name and re.fullmatch(r"[A-Za-z0-9._ -]+", name) and spec:
        return name.strip(), spec.strip()
    return arg, arg


def example_keys(rows: Sequence[Example]) -> list[str]:
    """A stable key per example: ``file_name`` + ``task`` (a video appears with several instructions),
    with ``#k`` for repeated pairs."""
    seen: dict[str, int] = {}
    keys = []
    for r in rows:
        base = f"{r.file_name}::{r.task}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        keys.append(base if k == 0 else f"{base}#{k}")
    return keys


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """Rows of a predictions jsonl by key (unreadable lines are skipped: a kill can truncate the last one)."""
    return read_jsonl_rows(Path(path))


def _check_settings(
    results: ResultsFile, settings: dict[str, Any], has_predictions: bool, *, keys: Sequence[str] | None = None
) -> None:
    """Refuse to mix predictions made with other settings (``keys``, default all); write the settings file."""
    try:
        results.check_settings(settings, keys, has_rows=has_predictions)
    except SettingsMismatchError as exc:
        raise EvaluationError(str(exc)) from None


# -------------------------------------------------------------------------------------------------- the runner


@dataclass
class ModelRun:
    """What happened for one model in a run."""

    name: str
    predictions_path: Path
    scored: int = 0
    reused: int = 0
    failed: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    curves: int = 0


@dataclass
class EvalResult:
    """Where a run wrote, what happened per model, and the leaderboard rows."""

    out_dir: Path
    runs: list[ModelRun]
    leaderboard: list[dict[str, Any]]
    files: list[Path]


def _settings_for(scorer: Any, requested: dict[str, Any]) -> dict[str, Any]:
    from roboreward.scoring import scorer_settings

    s = scorer_settings(scorer)
    for k in SAMPLING_KEYS:
        s.setdefault(k, requested.get(k))
    return s


def score_split(scorer: Scorer, rows: Sequence[Example], keys: Sequence[str], path: Path, **options: Any) -> ModelRun:
    """Score the rows that ``path`` does not hold yet, appending each finished batch (resumable; the batch loop
    is :func:`roboreward.scoring.batch.score_items`, which takes the ``options``: ``batch_size``, ``settings``,
    ``max_consecutive_failures``, ``show_progress``). Rows name the protocol; under ``helm`` they also hold
    HELM's parsed ``answer``."""
    from roboreward.scoring.batch import ScoreItem, ScoringError, score_items

    name = getattr(scorer, "name", "model")
    settings = options.get("settings") or {}
    options["settings"] = settings
    protocol = settings.get("protocol", "roboreward")
    transform = (lambda row: {**row, "answer": helm_row_answer(row)}) if protocol == "helm" else None
    results = ResultsFile(path, transform=transform)
    items = [
        ScoreItem(
            key,
            r.video_path,
            r.task,
            {"file_name": r.file_name, "task": r.task, "subset": r.subset, "reward": r.reward, "protocol": protocol},
        )
        for key, r in zip(keys, rows, strict=True)
    ]
    try:
        done = score_items(scorer, items, results, desc=f"scoring {name}", **options)
    except ScoringError as exc:
        raise EvaluationError(f"{exc} (model {name})") from None
    return ModelRun(name, results.path, done.scored, done.reused, done.failed, done.seconds, settings)


def _release(scorer: Any) -> None:
    import gc

    close = getattr(scorer, "close", None)
    if callable(close):
        close()
    del scorer
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


#: Recorded but not part of a results file's identity (a name or a path to the same data may change).
_NOT_COMPARED = frozenset({"name", "dataset"})
_MODEL_IDENTITY = ("revision", "weights_sha256")


def _compared(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys a reuse or an append must agree on: every recorded setting but a name or path; a model identity
    that cannot be known yet (a Hub model not downloaded) is not compared."""
    keys = [k for k in dict.fromkeys([*new, *old]) if k not in _NOT_COMPARED]
    return [k for k in keys if not (k in _MODEL_IDENTITY and new.get(k) is None)]


def _helm_rows(rows: list[Example], protocol: EvalProtocol) -> list[Example]:
    """HELM's robo_arena run: ``robo_arena_instances`` of the robo_arena rows (seed 0, dataset order kept)."""
    if not protocol.is_helm or protocol.robo_arena_instances is None:
        return rows
    arena = [i for i, r in enumerate(rows) if r.subset == "robo_arena"]
    keep = {arena[j] for j in helm.downsample_indices(len(arena), protocol.robo_arena_instances)}
    return [r for i, r in enumerate(rows) if r.subset != "robo_arena" or i in keep]


def evaluate_models(
    models: Sequence[str | Scorer],
    *,
    dataset: str | os.PathLike = DEFAULT_REPO,
    split: str = "test",
    out_dir: str | os.PathLike = "eval_results",
    limit: int | None = None,
    protocol: str | EvalProtocol = "roboreward",
    fps: float | None = None,
    max_frames: int | str | None = None,
    num_frames: int | None = None,
    max_new_tokens: int | None = None,
    robo_arena_instances: int | str | None = "default",
    voc_points: int = 0,
    batch_size: int = 8,
    scorer_kwargs: dict[str, Any] | None = None,
    scorer_factory: Callable[[str], Scorer] | None = None,
    show_progress: bool = True,
) -> EvalResult:
    """Score ``split`` of ``dataset`` with every model and write predictions + leaderboard under ``out_dir``.

    ``models`` are specs (``"name=spec"`` names one; see :func:`~roboreward.evaluation.protocols.
    load_protocol_scorer`) or scorer objects. ``protocol`` is ``"roboreward"`` (ours) or ``"helm"`` (HELM's
    method); ``fps`` / ``max_frames`` (an int or ``"all"``) / ``num_frames`` / ``max_new_tokens`` /
    ``robo_arena_instances`` adjust it (see :class:`~roboreward.evaluation.protocols.EvalProtocol`).
    ``voc_points`` > 0 also scores that many growing prefixes of every successful original video
    (:func:`curve_split`; ``roboreward`` protocol only) for the leaderboard's ``mean_voc``. Each model's
    results file is keyed by its spec, revision / weights hash, the dataset's content and every setting: a run
    that differs in any of them is refused (use another ``out_dir``). A model whose predictions are complete is
    not even loaded. One run writes into ``out_dir`` at a time (:func:`roboreward.lock.output_lock`); a second
    is refused naming the first's PID and host.
    """
    if not models:
        raise ValueError("give at least one model")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    proto = make_protocol(
        protocol, fps=fps, max_frames=max_frames, num_frames=num_frames, max_new_tokens=max_new_tokens,
        robo_arena_instances=robo_arena_instances,
    )  # fmt: skip
    try:
        root = resolve_dataset(dataset, splits=(split,))
    except Exception as exc:  # offline, unknown repo, no access: say what was looked for
        if Path(dataset).exists():
            raise
        raise EvaluationError(
            f"{dataset}: not a local folder, and downloading it from the Hub failed ({type(exc).__name__}: {exc})"
        ) from None
    if voc_points < 0:
        raise ValueError(f"voc_points must be >= 0, got {voc_points}")
    if voc_points and proto.is_helm:
        raise ValueError("prefix curves (VOC) score frame prefixes: use them with --protocol roboreward")
    options = {
        "voc_points": voc_points,
        "batch_size": batch_size,
        "scorer_kwargs": scorer_kwargs,
        "scorer_factory": scorer_factory,
        "show_progress": show_progress,
    }
    rows = _helm_rows(read_split(root, split, limit=limit), proto)
    if not rows:
        raise EvaluationError(f"{root}: split {split!r} has no examples")
    keys = example_keys(rows)
    out = Path(out_dir)
    try:
        with output_lock(out, "roboreward eval"):
            return _evaluate_into(out, models, rows, keys, root, proto, split, dataset, **options)
    except OutputLockedError as exc:
        raise EvaluationError(str(exc)) from None


def _evaluate_into(
    out: Path,
    models: Sequence[str | Scorer],
    rows: list[Example],
    keys: list[str],
    root: Path,
    proto: EvalProtocol,
    split: str,
    dataset: str | os.PathLike,
    *,
    voc_points: int,
    batch_size: int,
    scorer_kwargs: dict[str, Any] | None,
    scorer_factory: Callable[[str], Scorer] | None,
    show_progress: bool,
) -> EvalResult:
    """The body of :func:`evaluate_models`, run while holding ``out``'s lock."""
    from roboreward.evaluation.leaderboard import leaderboard_from_files, write_leaderboard

    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    base = {**proto.settings(), **dataset_identity(root, split), "dataset": str(dataset), "split": split}
    weights_cache = pred_dir / ".weights_sha256.json"

    runs: list[ModelRun] = []
    names: list[str] = []
    for model in models:
        if isinstance(model, str):
            name, spec = parse_model_arg(model)
        else:
            name, spec = getattr(model, "name", type(model).__name__), None
        if model_slug(name) in {model_slug(n) for n in names}:
            raise ValueError(f"model name {name!r} given twice (name them: --model name=spec)")
        names.append(name)
        results = ResultsFile(pred_dir / f"{model_slug(name)}.jsonl")
        curves = ResultsFile(pred_dir / f"{model_slug(name)}.curves.jsonl")
        existing = results.read()
        old = results.read_settings() or {}
        requested = {"name": name, "spec": spec, **model_identity(spec, cache=weights_cache), **base}
        curves_done = not voc_points or set(voc_keys(rows, keys)) <= set(curves.read())
        if spec is not None and old and all(k in existing for k in keys) and curves_done:
            _check_settings(results, {**old, **requested}, True, keys=_compared(old, requested))
            runs.append(ModelRun(name, results.path, reused=len(keys), settings=old))
            continue
        if spec is not None:
            kwargs = dict(scorer_kwargs or {})
            if not spec.startswith(("openai:", "vllm:")):
                kwargs.setdefault("batch_size", batch_size)
            scorer = scorer_factory(spec) if scorer_factory else load_protocol_scorer(spec, proto, **kwargs)
            scorer.name = name
            if requested["revision"] is None and requested["weights_sha256"] is None:  # a Hub model now cached
                requested.update(model_identity(spec, cache=weights_cache))
        else:
            scorer = model  # type: ignore[assignment]
        own = _settings_for(scorer, proto.settings())
        # a loaded spec runs the protocol's settings; a scorer object brings its own frames
        settings = {**own, **requested} if spec is not None else {**requested, **own}
        _check_settings(results, settings, bool(existing), keys=_compared(old, settings) if old else None)
        if voc_points:
            old_curves = curves.read_settings() or {}
            curve_settings = {**settings, "voc_points": voc_points}
            _check_settings(curves, curve_settings, bool(curves.read()), keys=_compared(old_curves, curve_settings))
        try:
            run = score_split(
                scorer, rows, keys, results.path, batch_size=batch_size, settings=settings, show_progress=show_progress
            )
            if voc_points:
                run.curves = curve_split(scorer, rows, keys, curves, voc_points, show_progress=show_progress)
            runs.append(run)
        finally:
            if spec is not None:
                _release(scorer)
    board = leaderboard_from_files(rows, keys, [(r.name, r.predictions_path, r.settings) for r in runs], proto)
    files = write_leaderboard(out, board, rows, split=split, dataset=str(dataset), protocol=proto)
    return EvalResult(out_dir=out, runs=runs, leaderboard=board, files=files)
