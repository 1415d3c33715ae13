"""Terminal rendering of scores (rich tables) for ``roboreward score``."""

from __future__ import annotations

from roboreward.rubric import SCORE_NAMES, SCORES
from roboreward.scoring.curve import ProgressCurve
from roboreward.types import RewardOutput


def print_score(name: str, instruction: str, out: RewardOutput, curve: ProgressCurve | None = None) -> None:
    """Print the distribution over 1..5 (the argmax in bold), the expected score and, with ``curve``, its points."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{name}: {instruction}")
    table.add_column("score")
    table.add_column("name")
    table.add_column("probability", justify="right")
    for s in SCORES:
        p = out.probs[s - 1] if out.probs else (1.0 if s == out.score else 0.0)
        mark = "[bold green]" if s == out.score else ""
        table.add_row(f"{mark}{s}", f"{mark}{SCORE_NAMES[s]}", f"{mark}{p:.3f}")
    console.print(table)
    exp = f"{out.expected:.3f}" if out.expected is not None else "n/a"
    status = "" if out.parsed else " [red](answer not parseable)[/red]"
    console.print(f"score [bold]{out.score}[/bold]  expected {exp}  progress {out.progress:.3f}{status}")
    if curve is not None:
        curve_table = Table(title=f"progress curve (VOC {curve.voc:.3f})")
        for col in ("t (s)", "fraction", "score", "expected"):
            curve_table.add_column(col, justify="right")
        for t, f, o in zip(curve.times, curve.fractions, curve.outputs, strict=True):
            curve_table.add_row(f"{t:.2f}", f"{f:.2f}", str(o.score), f"{o.value:.3f}")
        console.print(curve_table)
