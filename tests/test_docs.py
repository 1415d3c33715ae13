"""Every fenced ``python`` / ``bash`` block in README.md and docs/ runs, offline, as written.

A block runs unless its info string says ``no-run`` (e.g. a block that needs a GPU, the Hub or a server:
"```bash no-run"), and the text around it should say why. A document's blocks run in order in one fresh working
folder, each ``python`` block as its own script, each ``bash`` block with ``set -euo pipefail`` and the venv's
``bin/`` first on ``PATH``; a block fails the test when it exits non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "dataset_builder" / "README.md",
    REPO / "spaces" / "demo" / "README.md",
    *sorted((REPO / "eval_metric").glob("*/README.md")),
]
RUNNABLE = {"python", "py", "bash", "sh", "shell"}


def code_blocks(text: str) -> list[tuple[int, str, list[str], str]]:
    """``(line, language, info words, code)`` for each fenced block of a markdown text (markdown-it's parser)."""
    from markdown_it import MarkdownIt

    blocks = []
    for token in MarkdownIt().parse(text):
        if token.type == "fence" and token.map:
            words = token.info.split()
            blocks.append((token.map[0] + 1, words[0].lower() if words else "", words[1:], token.content))
    return blocks


def runnable_blocks(path: Path) -> list[tuple[int, str, str]]:
    return [
        (line, lang, code)
        for line, lang, words, code in code_blocks(path.read_text(encoding="utf-8"))
        if lang in RUNNABLE and "no-run" not in words
    ]


def test_code_blocks_parser() -> None:
    text = "a\n```python\nprint(1)\n```\n\n```bash no-run\nhf upload x\n```\n```\nplain\n```\n"
    assert code_blocks(text) == [
        (2, "python", [], "print(1)\n"),
        (6, "bash", ["no-run"], "hf upload x\n"),
        (9, "", [], "plain\n"),
    ]
    assert [b[:2] for b in code_blocks(text) if b[1] in RUNNABLE and "no-run" not in b[2]] == [(2, "python")]


def _doc_id(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if d.exists() and runnable_blocks(d)], ids=_doc_id)
def test_doc_blocks_run(doc: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MPLBACKEND": "Agg",
        "HF_DATASETS_CACHE": str(tmp_path / ".hf-datasets-cache"),  # no stale entries of other runs
        "ROBOREWARD_REPO": str(REPO),
    }
    for line, lang, code in runnable_blocks(doc):
        cmd = [sys.executable, "-c", code] if lang in {"python", "py"} else ["bash", "-c", "set -euo pipefail\n" + code]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (
            f"{_doc_id(doc)}:{line}: the {lang} block exited {proc.returncode}\n--- block ---\n{code}"
            f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
        )
