"""Shared bits of the benchmark scripts: machine/version facts and appending a section to BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import resource
import shlex
import sys
from importlib import metadata
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
_PACKAGES = ("torch", "torchcodec", "av", "transformers", "datasets", "numpy")


def machine() -> str:
    """One line: CPU model, cores, memory, GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    except Exception:
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}{gpu}"


def versions(extra: tuple[str, ...] = ()) -> str:
    out = [f"python {platform.python_version()}"]
    for name in _PACKAGES + extra:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{name} {metadata.version(name)}")
    return ", ".join(out)


def peak_rss_mib() -> float:
    """Peak resident memory of this process (and waited-for children) in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def append_section(title: str, body: str, *, extra_packages: tuple[str, ...] = (), notes: str = "") -> None:
    """Print and append ``## title`` with machine, versions, the exact command and ``body`` to BENCHMARKS.md."""
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"\n## {title}\n\n- date: {stamp}\n- machine: {machine()}\n- versions: {versions(extra_packages)}\n"
        f"- command: `{command}`\n\n{body}\n"
    )
    if notes:
        text += f"\n{notes}\n"
    print(text)
    if not BENCHMARKS_MD.exists():
        BENCHMARKS_MD.write_text(
            "# Benchmarks\n\nMeasured figures, newest sections last. Each section names the machine, the versions "
            "and the command that produced it; re-run the command to reproduce. Targets are from the issues.\n"
        )
    with open(BENCHMARKS_MD, "a") as fh:
        fh.write(text)
