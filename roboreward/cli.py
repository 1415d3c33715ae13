"""The ``roboreward`` command line: one sub-command per pipeline stage.

Every command is defined here and only parses options and calls library functions; library modules import no
typer.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="roboreward",
    help="Build RoboReward datasets from robot videos, train, score, evaluate and demo reward models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.command("version")
def version() -> None:
    """Print the installed version."""
    from roboreward import __version__

    typer.echo(__version__)


# ---- build (dataset stage) ----------------------------------------------------------------------------------
from roboreward.build import build_command  # noqa: E402

app.command("build")(build_command)
# ---- end build ----------------------------------------------------------------------------------------------

# ---- train (training stage) ---------------------------------------------------------------------------------
from roboreward.train import train_command  # noqa: E402

app.command("train")(train_command)
# ---- end train ----------------------------------------------------------------------------------------------

# ---- score (scoring stage) ----------------------------------------------------------------------------------
from roboreward.scoring import score_command  # noqa: E402

app.command("score")(score_command)
# ---- end score ----------------------------------------------------------------------------------------------

# ---- eval (evaluation stage) --------------------------------------------------------------------------------
from roboreward.evaluation import eval_command  # noqa: E402

app.command("eval")(eval_command)
# ---- end eval -----------------------------------------------------------------------------------------------

# ---- demo (demo stage) --------------------------------------------------------------------------------------
from roboreward.demo import demo_command  # noqa: E402

app.command("demo")(demo_command)
# ---- end demo -----------------------------------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    app()
