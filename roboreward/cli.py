"""The ``roboreward`` command line: one sub-command per pipeline stage.

Every command is defined here and only parses options and calls library functions; library modules import no
typer. (Over 400 lines: it holds every command's options and help texts, one marked section per command.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(
    name="roboreward",
    help="Build RoboReward datasets from robot videos, train, score, evaluate and demo reward models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


# ---- app options (--version, -v / -q) -----------------------------------------------------------------------
@dataclass
class _State:
    """What the app options set for the commands (``quiet``: no progress bars, no summaries)."""

    quiet: bool = False
    verbosity: int = 0
    silenced: bool = False
    saved_env: dict[str, str | None] = field(default_factory=dict)


_STATE = _State()


def _print_version(value: bool) -> None:
    if value:
        from roboreward import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."),
    ] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only: no progress bars or summaries.")] = False,
) -> None:
    """Build RoboReward datasets from robot videos, train, score, evaluate and demo reward models."""
    import logging

    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("roboreward").setLevel(level)
    if quiet != _STATE.silenced:  # a later command in the same process (tests) undoes an earlier -q
        _progress_bars(enabled=not quiet)
        _STATE.silenced = quiet
    _STATE.quiet, _STATE.verbosity = quiet, verbose


def _progress_bars(*, enabled: bool) -> None:
    """Every progress bar of this process on or off: tqdm and huggingface_hub (which transformers follows) read
    the environment when first imported; a library that is already imported is switched directly."""
    import os
    import sys

    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        if not enabled:
            _STATE.saved_env[name] = os.environ.get(name)
            os.environ[name] = "1"
        elif _STATE.saved_env.get(name) is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = _STATE.saved_env[name]  # type: ignore[assignment]
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import utils as hub_utils

        (hub_utils.enable_progress_bars if enabled else hub_utils.disable_progress_bars)()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()


# ---- end app options ----------------------------------------------------------------------------------------


@app.command("version")
def version() -> None:
    """Print the installed version."""
    from roboreward import __version__

    typer.echo(__version__)


# ---- build (dataset stage) ----------------------------------------------------------------------------------
#: The dataset card's license options, shared by `build` and `assemble`.
LicenseOption = Annotated[
    str, typer.Option("--license", help="license the dataset card declares (a Hub license id, or other)")
]
LicenseNameOption = Annotated[
    str | None, typer.Option("--license-name", help="with --license other: its name (default source-datasets)")
]
LicenseLinkOption = Annotated[
    str | None, typer.Option("--license-link", help="with --license other: a URL or a file in the dataset repo")
]


@app.command("build")
def build_command(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            metavar="SPEC",
            help="sample | lerobot:PATH | rlds:PATH | roboarena:PATH | released:PATH (repeatable; default sample)",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("roboreward_dataset"),
    seed: Annotated[int, typer.Option("--seed", help="seed for sampling and splitting")] = 0,
    episodes_per_source: Annotated[
        int | None,
        typer.Option("--episodes-per-source", help="sample N episodes uniformly per sub-dataset (default: all)"),
    ] = None,
    clip_fractions: Annotated[
        str, typer.Option("--clip-fractions", help="FRACTION:LABEL,... temporal clips of successes, or 'none'")
    ] = "0.1:1,0.3:2,0.5:3,0.7:4",
    split_fractions: Annotated[str, typer.Option("--split-fractions", help="train,validation,test")] = "0.8,0.1,0.1",
    workers: Annotated[
        int, typer.Option("--workers", "-j", help="shards in parallel (processes; threads with --relabel)")
    ] = 1,
    camera: Annotated[
        str | None,
        typer.Option(
            "--camera",
            help="camera to use (LeRobot key or name, RLDS observation key, "
            "RoboArena left_shoulder/right_shoulder/wrist)",
        ),
    ] = None,
    progress_bins: Annotated[
        str, typer.Option("--progress-bins", help="four 0-100 edges mapping RoboArena progress to 1-5")
    ] = "20,40,60,80",
    source_fps: Annotated[
        list[str] | None,
        typer.Option(
            "--source-fps", metavar="NAME=FPS", help="RLDS sub-dataset frame rate (repeatable; default: OXE rates)"
        ),
    ] = None,
    instruction_key: Annotated[
        str | None,
        typer.Option("--instruction-key", help="RLDS instruction feature, e.g. steps/language_instruction_2"),
    ] = None,
    source_split: Annotated[
        str | None, typer.Option("--source-split", help="read only this split of the sources (e.g. train, test)")
    ] = None,
    source_version: Annotated[
        str | None, typer.Option("--source-version", help="RLDS version folder to read (default: the newest)")
    ] = None,
    shard_size: Annotated[int, typer.Option("--shard-size", help="episodes per resumable shard")] = 8,
    video_fps: Annotated[
        str, typer.Option("--video-fps", help="output frame rate cap, or 'native' (the release: 10)")
    ] = "10",
    video_size: Annotated[
        str, typer.Option("--video-size", help="output long side in pixels (aspect kept), or 'native' (release: 320)")
    ] = "320",
    pixel_budget: Annotated[
        float,
        typer.Option("--pixel-budget", help="refuse source videos of more than this many pixels (w x h x frames)"),
    ] = 6e10,
    num_shards: Annotated[
        int, typer.Option("--num-shards", help="split the build over N machines (with --shard-index; then assemble)")
    ] = 1,
    shard_index: Annotated[
        int, typer.Option("--shard-index", help="which of --num-shards slices this run builds (0-based)")
    ] = 0,
    relabel: Annotated[
        bool, typer.Option("--relabel/--no-relabel", help="LM instruction cleaning + counterfactuals")
    ] = False,
    backend: Annotated[str, typer.Option("--backend", help="transformers | openai")] = "transformers",
    text_model: Annotated[str | None, typer.Option("--text-model")] = None,
    video_model: Annotated[str | None, typer.Option("--video-model")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="OPENAI_API_KEY")] = None,
    paraphrases: Annotated[int, typer.Option("--paraphrases", help="paraphrases per instruction (relabel)")] = 0,
    max_retries: Annotated[
        int, typer.Option("--max-retries", help="LM retries per stage (unparseable output, a 'no' from the validator)")
    ] = 3,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="parallel requests per episode (openai backend)")
    ] = 4,
    label_check: Annotated[
        bool,
        typer.Option(
            "--label-check/--no-label-check", help="ask the VLM to score each relabeled row (kept in label_check)"
        ),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per LM request (openai backend)")] = 120.0,
    license: LicenseOption = "other",
    license_name: LicenseNameOption = None,
    license_link: LicenseLinkOption = None,
) -> None:
    """Build a RoboReward dataset (videofolder layout + card) from robot-video sources; resumable."""
    from rich.console import Console
    from rich.table import Table

    from roboreward.dataset import REPORT, CardLicense, build_dataset, relabel_fingerprint
    from roboreward.dataset.media import VideoFormat
    from roboreward.sources import ReaderOptions, parse_source_fps

    errors = Console(stderr=True)
    relabeler = relabel_config = None
    try:
        bins = tuple(float(x) for x in progress_bins.split(","))
        video = VideoFormat.parse(video_fps, video_size)
        if relabel:
            from roboreward.relabel import make_relabeler

            relabel_config = relabel_fingerprint(
                backend, text_model, video_model, paraphrases, max_retries, label_check
            )
            relabeler = make_relabeler(
                backend,
                text_model=text_model,
                video_model=video_model,
                base_url=base_url,
                api_key=api_key,
                paraphrases=paraphrases,
                max_retries=max_retries,
                concurrency=concurrency,
                label_check=label_check,
                timeout=timeout,
                cache_dir=Path(out) / ".cache" / "lm",
            )
        summary = build_dataset(
            source or ["sample"],
            out,
            seed=seed,
            episodes_per_source=episodes_per_source,
            clip_fractions=clip_fractions,
            split_fractions=split_fractions,
            options=ReaderOptions(
                camera=camera,
                progress_bins=bins,
                source_fps=parse_source_fps(source_fps),
                instruction_key=instruction_key,
                source_split=source_split,
                source_version=source_version,
            ),
            video=video,
            pixel_budget=int(pixel_budget),
            workers=workers,
            shard_size=shard_size,
            num_shards=num_shards,
            shard_index=shard_index,
            relabeler=relabeler,
            relabel_config=relabel_config,
            license=CardLicense(license, license_name, license_link),
        )
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted: finished shards are kept; re-run the same command to resume[/]")
        raise typer.Exit(130) from None
    except BaseException as exc:
        _build_error(exc)
    console = Console()  # the summary is the command's output: stdout
    if summary.part is not None:
        i, n = summary.part
        console.print(
            f"part {i} of {n}: {summary.episodes_built} episodes built, {summary.shards_reused}/"
            f"{summary.shards_total} shards reused; {summary.seconds:.1f} s. When every part is done: "
            f"roboreward assemble --out <dataset> <the {n} part folders>"
        )
        return
    table = Table(title=f"RoboReward dataset in {summary.out}")
    for col in ("split", "examples", "episodes", "by kind", "by reward"):
        table.add_column(col)
    for split, c in summary.report["splits"].items():
        table.add_row(
            split,
            str(c["examples"]),
            str(c["episodes"]),
            ", ".join(f"{k} {v}" for k, v in c["by_kind"].items()),
            ", ".join(f"{k}:{v}" for k, v in c["by_reward"].items()),
        )
    console.print(table)
    console.print(
        f"{summary.episodes_built} episodes built, {summary.episodes_skipped} skipped "
        f"(see {summary.out / REPORT}); {summary.shards_reused}/{summary.shards_total} shards reused; "
        f"{summary.seconds:.1f} s"
    )


def _build_error(exc: BaseException) -> NoReturn:
    """Exit with a clear one-paragraph message (not wrapped, so it can be searched): 2 for bad arguments or input,
    3 for the machine's faults (disk, permissions, memory, a folder in use), after which a re-run resumes;
    anything else is a bug and propagates."""
    from roboreward.dataset.shards import BuildEnvironmentError
    from roboreward.lock import OutputLockedError
    from roboreward.video import is_environment_error

    if isinstance(exc, BuildEnvironmentError | OutputLockedError):
        typer.echo(f"error: {str(exc)[:600]}", err=True)
        raise typer.Exit(3) from None
    if is_environment_error(exc):
        typer.echo(
            f"error: {type(exc).__name__}: {str(exc)[:300]} -- an environment error (disk, permissions, memory), not "
            "bad input; what is finished is kept: fix it and re-run the same command to resume",
            err=True,
        )
        raise typer.Exit(3) from None
    if isinstance(exc, ValueError | FileNotFoundError | FileExistsError | NotADirectoryError):
        typer.echo(f"error: {str(exc)[:600]}", err=True)
        raise typer.Exit(2) from None
    raise exc


@app.command("assemble")
def assemble_command(
    parts: Annotated[list[Path], typer.Argument(help="the part folders of `build --num-shards N --shard-index i`")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder of the dataset")] = Path("roboreward_dataset"),
    license: LicenseOption = "other",
    license_name: LicenseNameOption = None,
    license_link: LicenseLinkOption = None,
) -> None:
    """Join the parts of a build spread over machines into one dataset (metadata, manifest, card)."""
    from roboreward.dataset import CardLicense, assemble_parts

    try:
        report = assemble_parts(out, parts, license=CardLicense(license, license_name, license_link))
    except BaseException as exc:
        _build_error(exc)
    counts = ", ".join(f"{s} {c['examples']}" for s, c in report["splits"].items())
    typer.echo(f"assembled {len(parts)} parts into {out}: {counts} examples, {report['episodes']['built']} episodes")


# ---- end build ----------------------------------------------------------------------------------------------


# ---- train (training stage) ---------------------------------------------------------------------------------
@app.command("train")
def train_command(
    config: Annotated[
        Path, typer.Option("--config", help="Recipe YAML (recipes/<model>/<method>/config_<variant>.yaml).")
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Overrides as key=value (max_steps=10 output_dir=runs/x), or raw TRL flags after --."),
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option("--script", help="Training script (default: recipes/sft_reward.py beside the recipe)."),
    ] = None,
) -> None:
    """Train a reward model from a recipe YAML, with optional key=value overrides (e.g. max_steps=10)."""
    from roboreward.dataset import DatasetFormatError
    from roboreward.training import RecipeError, overrides_to_argv, run

    try:
        run(["--config", str(config), *overrides_to_argv(overrides or [])], script=script)
    except (RecipeError, DatasetFormatError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


# ---- end train ----------------------------------------------------------------------------------------------


# ---- push (publishing a trained model) ----------------------------------------------------------------------
@app.command("push")
def push_command(
    folder: Annotated[Path, typer.Argument(help="output_dir of a training run (holds run_info.json).")],
    repo_id: Annotated[str, typer.Argument(help="Hub model repo, e.g. my-org/roboreward-4b.")],
    eval_results: Annotated[
        Path | None,
        typer.Option(
            "--eval-results", help="`roboreward eval` output folder or its leaderboard.json: added to model-index."
        ),
    ] = None,
    eval_model: Annotated[
        str | None, typer.Option("--eval-model", help="Leaderboard row of this model (name or spec).")
    ] = None,
    private: Annotated[bool | None, typer.Option("--private/--public", help="Visibility of a new repo.")] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Branch to push to.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the files and the card; upload nothing.")] = False,
) -> None:
    """Upload a trained model folder with our model card (never Trainer's) in one commit."""
    from roboreward.training import eval_results_from_leaderboard, push_files, push_model, read_run_info
    from roboreward.training.card import render_model_card

    try:
        results = eval_results_from_leaderboard(eval_results, eval_model) if eval_results is not None else []
        if dry_run:
            card = render_model_card({**read_run_info(folder), "model_id": repo_id}, eval_results=results, hub=True)
            typer.echo("\n".join([*push_files(folder), "README.md"]))
            typer.echo(str(card))
            return
        pushed = push_model(folder, repo_id, private=private, revision=revision, eval_results=results)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"pushed {len(pushed['files'])} files to https://huggingface.co/{repo_id}")


# ---- end push -----------------------------------------------------------------------------------------------

# ---- score (scoring stage) ----------------------------------------------------------------------------------
from roboreward.sampling import FrameSampling  # noqa: E402
from roboreward.scoring.common import DEFAULT_MODEL  # noqa: E402

_SAMPLING = FrameSampling()
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help='A Hub repo id or local folder, "metaworld" (bundled), "tiny", "openai:<model>@<url>" or '
        f'"vllm:<model>@<url>" '
        f"(default: {DEFAULT_MODEL}).",
        show_default=False,
    ),
]
FpsOption = Annotated[
    float | None, typer.Option(help=f"Frames sampled per second of video (default: {_SAMPLING.fps}).")
]
MaxFramesOption = Annotated[
    int | None, typer.Option(help=f"At most this many frames (default: {_SAMPLING.max_frames}).")
]
MinFramesOption = Annotated[
    int | None, typer.Option(help=f"At least this many frames (default: {_SAMPLING.min_frames}).")
]
NumFramesOption = Annotated[int | None, typer.Option(help="Exactly this many frames (overrides --fps).")]
BatchSizeOption = Annotated[int, typer.Option(min=1, help="Videos per scorer call (forward pass or API batch).")]


def _scoring_errors() -> tuple[type[BaseException], ...]:
    """What a scoring command reports as ``error: ...`` with exit status 1 (bad input, a server that is down)."""
    from roboreward.evaluation import SettingsMismatchError
    from roboreward.scoring import ApiError
    from roboreward.scoring.batch import ScoringError

    return (ValueError, OSError, ApiError, ScoringError, SettingsMismatchError)


def _load_scorer(
    model: str | None,
    fps: float | None,
    max_frames: int | None,
    min_frames: int | None,
    num_frames: int | None,
    batch_size: int,
) -> Any:
    """The scorer of ``--model`` with the frame-sampling options (``--batch-size`` for local models)."""
    from roboreward.scoring import is_api_spec, load_scorer, resolve_sampling

    sampling = resolve_sampling(fps=fps, max_frames=max_frames, min_frames=min_frames, num_frames=num_frames)
    local = {} if is_api_spec(model) else {"batch_size": batch_size}
    return load_scorer(model, sampling=sampling, **local)


@app.command("score")
def score(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            help="Video files, folders or globs, then the instruction they are judged against; or a manifest "
            "(.jsonl / .csv with path + instruction columns); or a built dataset folder (see --split).",
            show_default=False,
        ),
    ],
    instruction: Annotated[
        str | None, typer.Option("--instruction", "-i", help="The instruction (then every argument is an input).")
    ] = None,
    model: ModelOption = None,
    fps: FpsOption = None,
    max_frames: MaxFramesOption = None,
    min_frames: MinFramesOption = None,
    num_frames: NumFramesOption = None,
    batch_size: BatchSizeOption = 8,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Results file (.jsonl; a .parquet is written beside it). Re-running resumes it. "
            "(default: scores.jsonl when more than one video is scored)",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="The split of a built dataset to score.")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="Score at most this many inputs.")] = None,
    curve: Annotated[int, typer.Option(help="One video: also score this many growing prefixes (VOC).")] = 0,
    plot: Annotated[Path | None, typer.Option(help="With --curve: save the progress curve as a PNG here.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score videos against an instruction: score 1-5, the distribution over 1..5 and expected progress.

    One video prints a table (or --json); --curve N also scores N growing prefixes (dense progress curve).
    Many videos (a folder, a glob, a manifest, a dataset split) are scored in batches into --out, resumably.
    """
    import json

    from roboreward.scoring import progress_curve, scorer_settings
    from roboreward.scoring.batch import score_to_files
    from roboreward.scoring.inputs import collect_items
    from roboreward.scoring.report import print_score

    errors = _scoring_errors()
    try:
        items, kind = collect_items(inputs, instruction=instruction, split=split, limit=limit)
        single = kind == "videos" and len(items) == 1 and out is None
        if curve > 0 and not single:
            raise ValueError("--curve scores one video (without --out)")
        scorer = _load_scorer(model, fps, max_frames, min_frames, num_frames, batch_size)
        if single:
            video, task = items[0].video, items[0].instruction
            output = scorer.score(video, task)
            pc = progress_curve(scorer, video, task, curve) if curve > 0 else None
        else:
            files = score_to_files(
                scorer, items, out or Path("scores.jsonl"), batch_size=batch_size, show_progress=not _STATE.quiet
            )
    except errors as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not single:
        run = files.run
        summary = {
            "scored": run.scored,
            "reused": run.reused,
            "failed": run.failed,
            "results": str(files.jsonl),
            "parquet": str(files.parquet) if files.parquet else None,
        }
        if run.failed:
            summary["errors"] = str(files.errors)
        if json_output:
            typer.echo(json.dumps(summary, indent=2))
        elif not _STATE.quiet:
            typer.echo(
                f"{len(items)} inputs ({kind}): {run.scored} scored, {run.reused} already in {files.jsonl}, "
                f"{run.failed} failed" + (f" (see {files.errors})" if run.failed else "")
            )
        raise typer.Exit(1 if run.failed else 0)
    result = {"video": str(video), "instruction": task, **output.to_dict(), "progress": output.progress}
    result["settings"] = scorer_settings(scorer)
    if pc is not None:
        result["curve"] = pc.to_dict()
        if plot is not None:
            result["plot"] = str(pc.plot(plot, title=f"{scorer.name}: {task} (VOC {pc.voc:.2f})"))
    if json_output:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_score(scorer.name, task, output, pc)


# ---- end score ----------------------------------------------------------------------------------------------


# ---- annotate (scoring stage: rewards back into datasets) ---------------------------------------------------
@app.command("annotate")
def annotate(
    dataset: Annotated[Path, typer.Argument(help="A LeRobot dataset root (meta/info.json) or a built dataset.")],
    model: ModelOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="LeRobot: the rewards parquet (default: <dataset>/meta/rewards/<model>.parquet).", show_default=False
        ),
    ] = None,
    camera: Annotated[str | None, typer.Option(help="LeRobot: the camera to score (default: the first view).")] = None,
    split: Annotated[
        list[str] | None, typer.Option(help="Built dataset: the split(s) to annotate (default: all).")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Built dataset: prefix of the new columns.")] = "pred_",
    batch_size: BatchSizeOption = 8,
    fps: FpsOption = None,
    max_frames: MaxFramesOption = None,
    min_frames: MinFramesOption = None,
    num_frames: NumFramesOption = None,
) -> None:
    """Score every episode of a dataset and write the rewards back: score, p1..p5, expected and the settings.

    A LeRobot dataset gets a parquet keyed by episode_index beside it; a built RoboReward dataset gets new
    columns in <split>/metadata.jsonl (and its card). Resumable: a re-run scores only what is missing.
    """
    from roboreward.scoring.annotate import annotate_dataset, annotate_lerobot, is_lerobot

    try:
        if not dataset.is_dir():
            raise ValueError(f"{dataset}: no such dataset folder")
        lerobot = is_lerobot(dataset)
        scorer = _load_scorer(model, fps, max_frames, min_frames, num_frames, batch_size)
        show = not _STATE.quiet
        if lerobot:
            result = annotate_lerobot(
                dataset, scorer, out=out, camera=camera, batch_size=batch_size, show_progress=show
            )
        else:
            result = annotate_dataset(
                dataset, scorer, splits=split, prefix=prefix, batch_size=batch_size, show_progress=show
            )
    except _scoring_errors() as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not _STATE.quiet:
        for name, run in result.runs.items():
            typer.echo(f"{name}: {run.scored} scored, {run.reused} reused, {run.failed} failed")
        for path in result.files:
            typer.echo(f"wrote {path}")
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    raise typer.Exit(1 if result.failed else 0)


# ---- end annotate -------------------------------------------------------------------------------------------

# ---- eval (evaluation stage) --------------------------------------------------------------------------------
from roboreward.dataset import DEFAULT_REPO  # noqa: E402


@app.command("eval")
def eval_command(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="repo id / folder / metaworld / tiny / openai: or vllm:<model>@<url>; name=spec names it",
        ),
    ],
    split: Annotated[str, typer.Option(help="split to score")] = "test",
    dataset: Annotated[str, typer.Option(help="built dataset folder or Hub dataset repo")] = DEFAULT_REPO,
    out: Annotated[Path, typer.Option(help="results folder (predictions, leaderboard)")] = Path("eval_results"),
    protocol: Annotated[
        str,
        typer.Option(
            help="roboreward: ours (explicit frames, score from the logits); helm: HELM's RoboRewardBench method "
            "(text then video, the checkpoint's own video processor, generation, HELM's parsing and aggregation)"
        ),
    ] = "roboreward",
    limit: Annotated[int | None, typer.Option(help="score only the first N examples")] = None,
    fps: Annotated[
        float | None, typer.Option(help="frames per second sampled (roboreward: default 2; helm: the processor's)")
    ] = None,
    max_frames: Annotated[
        str | None,
        typer.Option(help="most frames per video, or 'all' for the whole video at --fps (roboreward default 8)"),
    ] = None,
    num_frames: Annotated[
        int | None, typer.Option(help="exact frames per video (overrides --fps; roboreward only)")
    ] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="helm: tokens generated per answer (HELM: 5000)")] = None,
    robo_arena_instances: Annotated[
        str | None, typer.Option(help="helm: robo_arena instances scored (HELM's seed-0 sample: 1000; 'all')")
    ] = None,
    voc_points: Annotated[
        int, typer.Option(help="also score N growing prefixes of each successful video for the mean VOC (0: off)")
    ] = 0,
    batch_size: Annotated[int, typer.Option(help="examples per scoring call")] = 8,
) -> None:
    """Score a split with one or more reward models; write resumable predictions and a leaderboard."""
    from rich.console import Console
    from rich.table import Table

    from roboreward.dataset import DatasetFormatError
    from roboreward.evaluation import EvaluationError, evaluate_models
    from roboreward.evaluation.leaderboard import fmt

    try:
        result = evaluate_models(
            model,
            dataset=dataset,
            split=split,
            out_dir=out,
            limit=limit,
            protocol=protocol,
            fps=fps,
            max_frames=max_frames,
            num_frames=num_frames,
            max_new_tokens=max_new_tokens,
            robo_arena_instances="default" if robo_arena_instances is None else robo_arena_instances,
            voc_points=voc_points,
            batch_size=batch_size,
        )
    except (EvaluationError, DatasetFormatError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    console = Console()
    table = Table(title=f"{dataset} / {split} (protocol {protocol})")
    shown = ("model", "macro_mae", "mae", "accuracy", "subset_win_rate", "parse_failures", "n")
    for key in shown:
        table.add_column(key, justify="left" if key == "model" else "right")
    for row in result.leaderboard:
        table.add_row(*(fmt(row.get(k)) for k in shown))
    console.print(table)
    for run in result.runs:
        msg = f"{run.name}: scored {run.scored}, reused {run.reused}, failed {run.failed} ({run.seconds:.1f} s)"
        if run.failed:
            msg += f" — see {run.predictions_path.with_name(run.predictions_path.stem + '.errors.jsonl')}"
        console.print(msg)
    console.print(f"wrote {', '.join(str(f) for f in result.files)}")


# ---- end eval -----------------------------------------------------------------------------------------------

# ---- demo (demo stage) --------------------------------------------------------------------------------------
from roboreward.demo import ENV_EXAMPLES, ENV_MODEL, OFFLINE_MODEL, Limits  # noqa: E402


@app.command("demo")
def demo(
    model: Annotated[
        str | None,
        typer.Option(
            help=f"Hub repo id, local folder, 'metaworld', 'tiny' or 'openai:<model>@<url>' (default ${ENV_MODEL}, "
            "else "
            f"{DEFAULT_MODEL}; '{OFFLINE_MODEL}' when HF_HUB_OFFLINE=1)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: 7860 or the next free one).")] = None,
    examples: Annotated[
        Path | None, typer.Option(help=f"A dataset in the released layout to take examples from (${ENV_EXAMPLES}).")
    ] = None,
    max_file_mb: Annotated[float, typer.Option(help="Upload size limit.")] = Limits.max_file_mb,
    max_duration_s: Annotated[float, typer.Option(help="Video duration limit.")] = Limits.max_duration_s,
    max_pixels: Annotated[
        int, typer.Option(help="Decoded-pixel budget (width x height x frames, from the header).")
    ] = Limits.max_pixels,
    keep_uploads_s: Annotated[int, typer.Option(help="Delete uploads this many seconds after they arrive.")] = (
        Limits.keep_uploads_s
    ),
    concurrency: Annotated[int, typer.Option(help="Scoring jobs run at once (the rest queue).")] = 1,
    curve_points: Annotated[int, typer.Option(help="Default number of progress-curve points (0 = off).")] = 8,
) -> None:
    """Serve the Gradio demo: upload a robot video, type the instruction, get the 1-5 reward."""
    from roboreward.demo import serve

    serve(
        model,
        examples=examples,
        limits=Limits(
            max_file_mb=max_file_mb,
            max_duration_s=max_duration_s,
            max_pixels=max_pixels,
            keep_uploads_s=keep_uploads_s,
        ),
        host=host,
        port=port,
        concurrency=concurrency,
        curve_points=curve_points,
    )


# ---- end demo -----------------------------------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    app()
