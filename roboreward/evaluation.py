"""Benchmark runner: score a split with several reward models, keep resumable predictions, write a leaderboard.

    roboreward eval --split test --model teetone/RoboReward-4B --model openai:gpt-5-mini@https://... --out results

Output folder::

    <out>/predictions/<model>.jsonl          one row per scored example (appended and flushed per batch)
    <out>/predictions/<model>.settings.json  what produced them: model, fps, max_frames, ... (checked on resume)
    <out>/predictions/<model>.errors.jsonl   examples that failed (bad video, API down): retried on the next run
    <out>/leaderboard.md / .csv / .json      metrics per model (macro MAE first) and per-subset MAE
    <out>/leaderboard.png                    bar charts of MAE / macro MAE and win rates
    <out>/confusion_<model>.png              one confusion matrix per model

An interrupted run (Ctrl-C, kill, a crashing scorer) re-run with the same arguments scores only the examples
that have no prediction yet; a truncated last line from a kill is dropped. The leaderboard compares models on
the examples that every model has a prediction for (``n`` in the table); ``missing`` counts the others.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from roboreward.dataset_io import DEFAULT_REPO, Row, read_split, resolve_dataset
from roboreward.rubric import SCORES
from roboreward.types import Scorer

SETTINGS_KEYS: tuple[str, ...] = ("fps", "max_frames", "min_frames", "num_frames")


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


def example_keys(rows: Sequence[Row]) -> list[str]:
    """A stable key per example: ``file_name`` + ``task`` (a video appears with several instructions),
    with ``#k`` for repeated pairs."""
    seen: dict[str, int] = {}
    keys = []
    for r in rows:
        base = f"{r.data['file_name']}::{r.task}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        keys.append(base if k == 0 else f"{base}#{k}")
    return keys


# -------------------------------------------------------------------------------------------- predictions files


def _repair_tail(path: Path) -> None:
    """Drop a partial last line (a kill mid-write) so appended rows start on a line of their own."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        fh.truncate(data.rfind(b"\n") + 1)


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """Rows of a predictions jsonl by key (unreadable lines are skipped: a kill can truncate the last one)."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "key" in row:
                out.setdefault(row["key"], row)
    return out


def _append_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _check_settings(path: Path, settings: dict[str, Any], has_predictions: bool) -> None:
    """Refuse to mix predictions made with different frame sampling; write the settings file."""
    if path.is_file() and has_predictions:
        old = json.loads(path.read_text())
        changed = {k: (old.get(k), settings.get(k)) for k in SETTINGS_KEYS if old.get(k) != settings.get(k)}
        if changed:
            diff = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items())
            raise EvaluationError(
                f"{path.parent}: existing predictions were made with other settings ({diff}); "
                "use another --out folder or delete that model's files"
            )
    path.write_text(json.dumps(settings, indent=2, default=str) + "\n")


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


@dataclass
class EvalResult:
    out_dir: Path
    runs: list[ModelRun]
    leaderboard: list[dict[str, Any]]
    files: list[Path]


def _settings_for(scorer: Any, requested: dict[str, Any]) -> dict[str, Any]:
    from roboreward.scoring import scorer_settings

    s = scorer_settings(scorer)
    for k in SETTINGS_KEYS:
        s.setdefault(k, requested.get(k))
    return s


def score_split(
    scorer: Scorer,
    rows: Sequence[Row],
    keys: Sequence[str],
    path: Path,
    *,
    batch_size: int = 8,
    settings: dict[str, Any] | None = None,
    max_consecutive_failures: int = 20,
    show_progress: bool = True,
) -> ModelRun:
    """Score the rows that ``path`` does not hold yet, appending each finished batch (resumable)."""
    from tqdm.auto import tqdm

    from roboreward.video import VideoDecodeError

    name = getattr(scorer, "name", "model")
    settings = settings or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    _repair_tail(path)
    done = read_predictions(path)
    errors_path = path.with_name(path.name.replace(".jsonl", ".errors.jsonl"))
    todo = [i for i, k in enumerate(keys) if k not in done]
    run = ModelRun(name=name, predictions_path=path, reused=len(keys) - len(todo), settings=settings)
    error_rows: list[dict[str, Any]] = []
    consecutive = 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"scoring {name}", unit="ex", disable=not show_progress or not todo)
    sampling = {k: settings.get(k) for k in SETTINGS_KEYS}

    def record(i: int, out: Any) -> dict[str, Any]:
        r = rows[i]
        return {
            "key": keys[i],
            "file_name": r.data["file_name"],
            "task": r.task,
            "subset": r.subset,
            "reward": r.reward,
            "score": out.score if out.parsed else None,
            "probs": out.probs,
            "expected": out.expected,
            "parsed": out.parsed,
            "raw_text": out.raw_text,
            "model": name,
            **sampling,
        }

    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            videos, tasks = [rows[i].video_path for i in chunk], [rows[i].task for i in chunk]
            try:
                outs: list[Any] = list(scorer.score_batch(videos, tasks))
                if len(outs) != len(chunk):
                    raise EvaluationError(f"{name}: score_batch returned {len(outs)} outputs for {len(chunk)} inputs")
            except (EvaluationError, KeyboardInterrupt):
                raise
            except Exception:  # isolate the bad example(s): score this batch one by one
                outs = []
                for i in chunk:
                    try:
                        outs.append(scorer.score(rows[i].video_path, rows[i].task))
                    except Exception as exc:
                        outs.append(exc)
            good, bad = [], []
            for i, out in zip(chunk, outs, strict=True):
                if isinstance(out, BaseException):
                    kind = "video" if isinstance(out, VideoDecodeError) else "scorer"
                    bad.append(
                        {"key": keys[i], "file_name": rows[i].data["file_name"], "error": f"{out}", "kind": kind}
                    )
                else:
                    good.append(record(i, out))
            _append_jsonl(path, good)
            run.scored += len(good)
            run.failed += len(bad)
            error_rows.extend(bad)
            consecutive = 0 if good else consecutive + len(bad)
            bar.update(len(chunk))
            if consecutive >= max_consecutive_failures:
                raise EvaluationError(
                    f"{name}: {consecutive} examples in a row failed (last: {bad[-1]['error']}); stopping this model. "
                    f"Finished predictions are kept in {path}; re-run to resume."
                )
    finally:
        bar.close()
        run.seconds = time.perf_counter() - t0
        # this run's failures replace the previous list (earlier failures were retried above)
        if error_rows:
            errors_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in error_rows))
        elif errors_path.exists() and not [k for k in keys if k not in read_predictions(path)]:
            errors_path.unlink()
    return run


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


def evaluate_models(
    models: Sequence[str | Scorer],
    *,
    dataset: str | os.PathLike = DEFAULT_REPO,
    split: str = "test",
    out_dir: str | os.PathLike = "eval_results",
    limit: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    num_frames: int | None = None,
    batch_size: int = 8,
    scorer_kwargs: dict[str, Any] | None = None,
    scorer_factory: Callable[[str], Scorer] | None = None,
    show_progress: bool = True,
) -> EvalResult:
    """Score ``split`` of ``dataset`` with every model and write predictions + leaderboard under ``out_dir``.

    ``models`` are specs for :func:`roboreward.scoring.load_scorer` (``"name=spec"`` names one) or scorer
    objects. A model whose predictions are complete is not even loaded. ``fps`` / ``max_frames`` /
    ``num_frames`` (default: the scorer defaults) go to every loaded scorer and into every results file.
    """
    from roboreward import scoring

    if not models:
        raise ValueError("give at least one model")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    try:
        root = resolve_dataset(dataset, splits=(split,))
    except Exception as exc:  # offline, unknown repo, no access: say what was looked for
        if Path(dataset).exists():
            raise
        raise EvaluationError(
            f"{dataset}: not a local folder, and downloading it from the Hub failed ({type(exc).__name__}: {exc})"
        ) from None
    rows = read_split(root, split, limit=limit)
    if not rows:
        raise EvaluationError(f"{root}: split {split!r} has no examples")
    keys = example_keys(rows)
    out = Path(out_dir)
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    requested = {
        "fps": scoring.DEFAULT_FPS if fps is None and num_frames is None else (None if num_frames else fps),
        "max_frames": max_frames or scoring.DEFAULT_MAX_FRAMES,
        "num_frames": num_frames,
    }
    load_kwargs: dict[str, Any] = dict(requested)
    load_kwargs.update(scorer_kwargs or {})

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
        path = pred_dir / f"{model_slug(name)}.jsonl"
        existing = read_predictions(path)
        settings_path = path.with_name(path.stem + ".settings.json")
        if spec is not None and all(k in existing for k in keys) and settings_path.is_file():
            old = json.loads(settings_path.read_text())
            _check_settings(settings_path, {**old, **requested, "min_frames": old.get("min_frames")}, True)
            runs.append(ModelRun(name, path, reused=len(keys), settings=old))
            continue
        if spec is not None:
            kwargs = dict(load_kwargs)
            if not spec.startswith("openai:"):
                kwargs.setdefault("batch_size", batch_size)
            scorer = scorer_factory(spec) if scorer_factory else scoring.load_scorer(spec, **kwargs)
            scorer.name = name
        else:
            scorer = model  # type: ignore[assignment]
        settings = {"name": name, "spec": spec, **_settings_for(scorer, requested), "dataset": str(dataset)}
        settings["split"] = split
        _check_settings(settings_path, settings, bool(existing))
        try:
            runs.append(
                score_split(
                    scorer, rows, keys, path, batch_size=batch_size, settings=settings, show_progress=show_progress
                )
            )
        finally:
            if spec is not None:
                _release(scorer)
    board = leaderboard_from_files(rows, keys, [(r.name, r.predictions_path, r.settings) for r in runs])
    files = write_leaderboard(out, board, rows, split=split, dataset=str(dataset))
    return EvalResult(out_dir=out, runs=runs, leaderboard=board, files=files)


# -------------------------------------------------------------------------------------------------- leaderboard


def leaderboard_from_files(
    rows: Sequence[Row], keys: Sequence[str], models: Sequence[tuple[str, Path, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Metrics per model on the examples every model has a prediction for (win rates with 2+ models)."""
    from roboreward import metrics

    preds = {name: read_predictions(path) for name, path, _ in models}
    common = [i for i, k in enumerate(keys) if all(k in p for p in preds.values())]
    if not common:
        raise EvaluationError("no example has a prediction from every model (see the *.errors.jsonl files)")
    refs = [rows[i].reward for i in common]
    subsets = [rows[i].subset for i in common]
    table = {name: [preds[name][keys[i]]["score"] for i in common] for name in preds}
    board = metrics.leaderboard(table, refs, subsets)
    settings = {name: s for name, _, s in models}
    for row in board:
        s = settings[row["model"]]
        row["missing"] = len(keys) - len(common)
        row.update({k: s.get(k) for k in ("fps", "max_frames", "num_frames")})
        row["spec"] = s.get("spec") or s.get("model") or row["model"]
    return board


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("macro_mae", "macro MAE"),
    ("mae", "MAE"),
    ("accuracy", "accuracy"),
    ("off_by_one_accuracy", "off-by-one acc."),
    ("spearman", "Spearman"),
    ("subset_win_rate", "subset win rate"),
    ("instance_win_rate", "instance win rate"),
    ("parse_failures", "parse failures"),
    ("n", "n"),
    ("missing", "missing"),
    ("fps", "fps"),
    ("max_frames", "max frames"),
    ("num_frames", "num frames"),
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def markdown_leaderboard(board: Sequence[dict[str, Any]], *, split: str, dataset: str) -> str:
    """The leaderboard (macro MAE first) and a per-subset MAE table, as markdown."""
    lines = [
        f"# Leaderboard: {dataset} / {split}",
        "",
        "Ranked by macro MAE (unweighted mean of per-subset MAE, the RoboRewardBench headline); lower is better. "
        "Unparseable answers count at the maximum error, 4.",
        "",
        "| rank | " + " | ".join(title for _, title in _COLUMNS) + " |",
        "|---|" + "---|" * len(_COLUMNS),
    ]
    for rank, row in enumerate(board, 1):
        lines.append(f"| {rank} | " + " | ".join(_fmt(row.get(k)) for k, _ in _COLUMNS) + " |")
    subsets = sorted({s for row in board for s in row.get("per_subset_mae", {})})
    if subsets:
        lines += ["", "## MAE per subset", "", "| subset | " + " | ".join(r["model"] for r in board) + " |"]
        lines.append("|---|" + "---|" * len(board))
        for s in subsets:
            lines.append(f"| {s} | " + " | ".join(_fmt(r["per_subset_mae"].get(s)) for r in board) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(
    out: Path, board: Sequence[dict[str, Any]], rows: Sequence[Row], *, split: str, dataset: str
) -> list[Path]:
    """leaderboard.md / .csv / .json, leaderboard.png and one confusion_<model>.png per model."""
    import csv

    out.mkdir(parents=True, exist_ok=True)
    md = out / "leaderboard.md"
    md.write_text(markdown_leaderboard(board, split=split, dataset=dataset), encoding="utf-8")
    csv_path = out / "leaderboard.csv"
    subsets = sorted({s for row in board for s in row.get("per_subset_mae", {})})
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", *(k for k, _ in _COLUMNS), *(f"mae_{s}" for s in subsets)])
        for rank, row in enumerate(board, 1):
            w.writerow(
                [rank, *(row.get(k) for k, _ in _COLUMNS), *(row.get("per_subset_mae", {}).get(s) for s in subsets)]
            )
    js = out / "leaderboard.json"
    js.write_text(json.dumps({"dataset": dataset, "split": split, "models": list(board)}, indent=2, default=str))
    files = [md, csv_path, js, plot_leaderboard(board, out / "leaderboard.png")]
    for row in board:
        files.append(plot_confusion(row, out / f"confusion_{model_slug(row['model'])}.png"))
    return files


def plot_leaderboard(board: Sequence[dict[str, Any]], path: Path) -> Path:
    """Bar charts: MAE and macro MAE per model; instance and subset win rates (when 2+ models)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["model"] for r in board]
    x = np.arange(len(names))
    has_wr = len(board) > 1
    fig, axes = plt.subplots(1, 2 if has_wr else 1, figsize=(max(6, 1.3 * len(names)) * (2 if has_wr else 1), 4.5))
    axes = np.atleast_1d(axes)
    width = 0.38
    ax = axes[0]
    ax.bar(x - width / 2, [r["macro_mae"] for r in board], width, label="macro MAE")
    ax.bar(x + width / 2, [r["mae"] for r in board], width, label="MAE")
    ax.set_ylabel("mean absolute error (lower is better)")
    ax.set_title("Reward error")
    ax.legend()
    if has_wr:
        ax = axes[1]
        ax.bar(x - width / 2, [r["subset_win_rate"] for r in board], width, label="subset win rate (HELM)")
        ax.bar(x + width / 2, [r["instance_win_rate"] for r in board], width, label="instance win rate")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        ax.set_ylabel("win rate (higher is better)")
        ax.set_title("Win rates")
        ax.legend()
    for ax in axes:
        ax.set_xticks(x, names, rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(row: dict[str, Any], path: Path) -> Path:
    """A 5x5 confusion matrix heatmap (rows = reference, columns = prediction) with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cm = np.asarray(row["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(5, 4.4))
    im = ax.imshow(cm, cmap="Blues")
    for r in range(cm.shape[0]):
        for c in range(cm.shape[1]):
            color = "white" if cm[r, c] > cm.max() / 2 else "black"
            ax.text(c, r, str(cm[r, c]), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(len(SCORES)), [str(s) for s in SCORES])
    ax.set_yticks(range(len(SCORES)), [str(s) for s in SCORES])
    ax.set_xlabel("predicted score")
    ax.set_ylabel("reference score")
    extra = f", {row['parse_failures']} unparsed" if row.get("parse_failures") else ""
    ax.set_title(f"{row['model']}\nMAE {row['mae']:.3f}, accuracy {row['accuracy']:.3f}{extra}", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------- CLI


def eval_command(
    model: Annotated[
        list[str],
        typer.Option("--model", "-m", help="repo id / folder / tiny / openai:<model>@<url>; name=spec names it"),
    ],
    split: Annotated[str, typer.Option(help="split to score")] = "test",
    dataset: Annotated[str, typer.Option(help="built dataset folder or Hub dataset repo")] = DEFAULT_REPO,
    out: Annotated[Path, typer.Option(help="results folder (predictions, leaderboard)")] = Path("eval_results"),
    limit: Annotated[int | None, typer.Option(help="score only the first N examples")] = None,
    fps: Annotated[float | None, typer.Option(help="frames per second sampled (default 2)")] = None,
    max_frames: Annotated[int | None, typer.Option(help="most frames per video (default 8)")] = None,
    num_frames: Annotated[int | None, typer.Option(help="exact frames per video (overrides --fps)")] = None,
    batch_size: Annotated[int, typer.Option(help="examples per scoring call")] = 8,
) -> None:
    """Score a split with one or more reward models; write resumable predictions and a leaderboard."""
    from roboreward.dataset_io import DatasetFormatError

    try:
        result = evaluate_models(
            model,
            dataset=dataset,
            split=split,
            out_dir=out,
            limit=limit,
            fps=fps,
            max_frames=max_frames,
            num_frames=num_frames,
            batch_size=batch_size,
        )
    except (EvaluationError, DatasetFormatError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{dataset} / {split}")
    shown = ("model", "macro_mae", "mae", "accuracy", "subset_win_rate", "parse_failures", "n")
    for key in shown:
        table.add_column(key, justify="left" if key == "model" else "right")
    for row in result.leaderboard:
        table.add_row(*(_fmt(row.get(k)) for k in shown))
    console.print(table)
    for run in result.runs:
        msg = f"{run.name}: scored {run.scored}, reused {run.reused}, failed {run.failed} ({run.seconds:.1f} s)"
        if run.failed:
            msg += f" — see {run.predictions_path.with_name(run.predictions_path.stem + '.errors.jsonl')}"
        console.print(msg)
    console.print(f"wrote {', '.join(str(f) for f in result.files)}")
