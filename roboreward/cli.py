"""The ``roboreward`` command line: one sub-command per pipeline stage.

Each stage module owns its command function (``<module>.<function>``), listed in :data:`COMMANDS`; this
file only registers them, so adding a stage is one line here.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="roboreward",
    help="Build RoboReward datasets from robot videos, train, score, evaluate and demo reward models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

#: (command name, module, function). Modules import their heavy dependencies lazily.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "roboreward.demo", "demo_command"),
    ("score", "roboreward.scoring", "score_command"),
    ("eval", "roboreward.evaluation", "eval_command"),
    ("train", "roboreward.train", "train_command"),
    ("build", "roboreward.build", "build_command"),
]


@app.command("version")
def version() -> None:
    """Print the installed version."""
    from roboreward import __version__

    typer.echo(__version__)


for _name, _module, _func in COMMANDS:
    app.command(_name)(getattr(importlib.import_module(_module), _func))


if __name__ == "__main__":  # pragma: no cover
    app()
