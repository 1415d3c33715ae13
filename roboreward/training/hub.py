"""Publish a trained reward model: the saved folder and our model card, in one Hub commit.

Trainer's own ``push_to_hub`` would upload before the RoboReward card is written (and with Trainer's card), so a
run switches it off (:func:`roboreward.training.config.configure_training_args`) and pushes the finished folder
here. The card is re-rendered from ``run_info.json`` with the repo id, so its usage snippet loads the pushed model;
checkpoints, optimizer state, TensorBoard logs and pickles never leave the machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi
from huggingface_hub.utils import filter_repo_objects

from roboreward.training.card import read_run_info, render_model_card

#: Never uploaded: Trainer checkpoints (with optimizer state), TensorBoard runs, pickles, caches.
PUSH_IGNORE: tuple[str, ...] = (
    "checkpoint-*/**",
    "runs/**",
    ".cache/**",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "README.md",  # our card is added from memory, rendered for the repo id
    "*/README.md",  # PEFT's adapter card
)


def push_files(folder: str | os.PathLike) -> list[str]:
    """The files of ``folder`` a push uploads besides the card (sorted, relative, ``/``-separated)."""
    root = Path(folder)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return list(filter_repo_objects(files, ignore_patterns=list(PUSH_IGNORE)))


def push_model(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    eval_results: Sequence[EvalResult] = (),
    template: str | os.PathLike | None = None,
    api: HfApi | None = None,
) -> dict[str, Any]:
    """Create ``repo_id`` if needed and upload the model folder plus our card (with ``model-index``) in one commit.

    Returns ``{"repo_id", "files", "card", "commit"}``. The folder must be the output of a roboreward training run
    (it holds ``run_info.json`` and ``model.safetensors`` or a LoRA ``adapter/``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such model folder")
    info = read_run_info(root)
    files = push_files(root)
    weights = [f for f in files if f.endswith(".safetensors") and "/" not in f.removeprefix("adapter/")]
    if not weights:
        raise FileNotFoundError(f"{root}: no model.safetensors (or adapter/) to push: did the run finish?")
    card = str(render_model_card({**info, "model_id": repo_id}, template, eval_results, hub=True))
    api = api or HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, token=token)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in files]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    commit = api.create_commit(
        repo_id,
        operations=operations,
        commit_message=commit_message or f"Upload RoboReward model ({info.get('base_model')} fine-tune)",
        revision=revision,
        token=token,
    )
    return {"repo_id": repo_id, "files": [*files, "README.md"], "card": card, "commit": commit}
