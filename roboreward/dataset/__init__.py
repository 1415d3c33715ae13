"""The dataset stage: build a RoboReward dataset in the released layout, and read one.

Modules: :mod:`~roboreward.dataset.plan` (which episodes, which split, which shard), ``media`` (copy / remux /
encode videos), ``episode`` (one episode's files and rows), ``shards`` (the worker pool and done markers),
``assemble`` (metadata.jsonl, manifest, card), ``card`` (the dataset card), ``reader`` (read a built or
released dataset), ``clip`` (temporal clips), ``split`` (episode-grouped splits), ``build`` (orchestration).

The reader's names are imported eagerly (they are light and used by training, evaluation and the demo); the
builder's on first use, so ``roboreward.sources`` can read released datasets through this package without an
import cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from roboreward.dataset.reader import (
    DEFAULT_REPO,
    REQUIRED_COLUMNS,
    SPLIT_ALIASES,
    SPLITS,
    DatasetFormatError,
    available_splits,
    iter_metadata,
    read_split,
    resolve_dataset,
    safe_join,
    split_dir,
    subset_of,
)

if TYPE_CHECKING:
    from roboreward.dataset.assemble import assemble_parts
    from roboreward.dataset.build import BuildSummary, build_dataset, relabel_fingerprint
    from roboreward.dataset.card import CardLicense
    from roboreward.dataset.media import VideoFormat
    from roboreward.dataset.plan import BUILD_DIR, MANIFEST, REPORT

_LAZY = {
    "assemble_parts": "roboreward.dataset.assemble",
    "VideoFormat": "roboreward.dataset.media",
    "CardLicense": "roboreward.dataset.card",
    "BuildSummary": "roboreward.dataset.build",
    "build_dataset": "roboreward.dataset.build",
    "relabel_fingerprint": "roboreward.dataset.build",
    "BUILD_DIR": "roboreward.dataset.plan",
    "MANIFEST": "roboreward.dataset.plan",
    "REPORT": "roboreward.dataset.plan",
}

__all__ = [
    "BUILD_DIR",
    "DEFAULT_REPO",
    "MANIFEST",
    "REPORT",
    "REQUIRED_COLUMNS",
    "SPLITS",
    "SPLIT_ALIASES",
    "BuildSummary",
    "CardLicense",
    "VideoFormat",
    "DatasetFormatError",
    "assemble_parts",
    "available_splits",
    "build_dataset",
    "iter_metadata",
    "read_split",
    "relabel_fingerprint",
    "resolve_dataset",
    "safe_join",
    "split_dir",
    "subset_of",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'roboreward.dataset' has no attribute {name!r}")
