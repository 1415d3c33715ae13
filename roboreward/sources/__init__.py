"""Source readers: turn robot-video corpora into :class:`~roboreward.types.Episode` objects, one at a time.

Every reader works in two steps so a build never holds more than one episode in memory:

* ``list_<kind>(path, options)`` yields light :class:`EpisodeRef` records (ids, sub-dataset, where to find the
  episode) from metadata only;
* :func:`load_episode` turns one ref into an :class:`Episode` (video path or decoded frames), validating it and
  raising :class:`SourceError` (naming the episode and the field) on bad input.

One module per format, registered in :data:`READERS`:

``lerobot``   :mod:`roboreward.sources.lerobot` — LeRobot datasets v3.0 and v2.x (label 5: OXE successes).
``rlds``      :mod:`roboreward.sources.rlds` — TFDS RLDS exports (TFRecord or ArrayRecord), decoded without
              TensorFlow by :mod:`roboreward.sources.tfrecord` (label 5).
``roboarena`` :mod:`roboreward.sources.roboarena` — RoboArena A/B evaluation sessions (progress -> 1-5 by bins).
``released``  :mod:`roboreward.sources.released` — the released RoboReward layout, to rebuild or re-split it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from roboreward.sources.common import (
    OXE_EMBODIMENTS,
    EpisodeRef,
    ListingProblem,
    ReaderOptions,
    SourceError,
    choose_camera,
    parse_source_fps,
    slug,
    stable_seed,
    subset_name,
)
from roboreward.sources.lerobot import decode_range, list_lerobot, load_lerobot
from roboreward.sources.released import list_released, load_released
from roboreward.sources.rlds import RLDS_CAMERAS, RLDS_FPS, RLDS_INSTRUCTION_KEYS, list_rlds, load_rlds
from roboreward.sources.roboarena import ROBOARENA_CAMERAS, ROBOARENA_SOURCE, list_roboarena, load_roboarena
from roboreward.sources.tfrecord import crc32c, masked_crc, parse_example, read_tfrecord, tfrecord_offsets
from roboreward.types import Episode

__all__ = [
    "OXE_EMBODIMENTS",
    "READERS",
    "RLDS_CAMERAS",
    "RLDS_FPS",
    "RLDS_INSTRUCTION_KEYS",
    "ROBOARENA_CAMERAS",
    "ROBOARENA_SOURCE",
    "EpisodeRef",
    "ListingProblem",
    "ReaderOptions",
    "SourceError",
    "choose_camera",
    "crc32c",
    "decode_range",
    "list_source",
    "load_episode",
    "masked_crc",
    "parse_example",
    "parse_source_fps",
    "parse_source_spec",
    "read_tfrecord",
    "sample_per_source",
    "sample_source_dir",
    "slug",
    "stable_seed",
    "subset_name",
    "tfrecord_offsets",
]

Lister = Callable[[Path, ReaderOptions, "list[ListingProblem] | None"], Iterator[EpisodeRef]]
Loader = Callable[[EpisodeRef, ReaderOptions], Episode]

#: The registry: reader name (the ``<reader>:`` of a ``--source`` spec) -> (list refs, load one episode).
READERS: dict[str, tuple[Lister, Loader]] = {
    "lerobot": (list_lerobot, load_lerobot),
    "rlds": (list_rlds, load_rlds),
    "roboarena": (list_roboarena, load_roboarena),
    "released": (list_released, load_released),
}


def parse_source_spec(spec: str) -> tuple[str, Path | None]:
    """``sample`` | ``<reader>:<path>`` -> (reader, path)."""
    if spec == "sample":
        return "sample", None
    reader, sep, path = spec.partition(":")
    if not sep or reader not in READERS or not path:
        raise ValueError(f"bad --source {spec!r}: use sample or one of {', '.join(f'{r}:PATH' for r in READERS)}")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"--source {spec!r}: {p} does not exist")
    return reader, p


def sample_source_dir() -> Path:
    """The bundled sample source (Meta-World rollouts; see scripts/make_sample_source.py)."""
    from importlib import resources

    return Path(str(resources.files("roboreward").joinpath("data", "sample_source")))


def list_source(
    spec: str, options: ReaderOptions | None = None, problems: list[ListingProblem] | None = None
) -> Iterator[EpisodeRef]:
    """All episode refs of one ``--source`` spec (``sample`` = the bundled LeRobot + RoboArena sample).

    With a ``problems`` list, a dataset, file or episode that cannot be listed (bad ``info.json``, an
    ``episode_index`` that is not an integer, a truncated record file, ...) is appended to it, named, and the
    rest is listed; without one the first such problem raises. A source with nothing to list always raises.
    """
    options = options or ReaderOptions()
    reader, path = parse_source_spec(spec)
    if reader == "sample":
        root = sample_source_dir()
        if not (root / "lerobot").is_dir():
            raise FileNotFoundError(f"the bundled sample source is missing from {root}")
        yield from list_lerobot(root / "lerobot", options, problems)
        yield from list_roboarena(root / "roboarena", options, problems)
        return
    assert path is not None
    yield from READERS[reader][0](path, options, problems)


def load_episode(ref: EpisodeRef, options: ReaderOptions | None = None) -> Episode:
    """Load and validate one episode. Raises :class:`SourceError` naming the episode and field."""
    options = options or ReaderOptions()
    try:
        episode = READERS[ref.reader][1](ref, options)
    except SourceError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(ref.id, "episode", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(episode.instruction, str) or not episode.instruction.strip():
        raise SourceError(ref.id, "instruction", "missing or empty instruction")
    episode.instruction = " ".join(episode.instruction.split())
    return episode


def sample_per_source(refs: Sequence[EpisodeRef], per_source: int | None, seed: int) -> list[EpisodeRef]:
    """Uniformly sample ``per_source`` episodes from each sub-dataset (all when it has fewer), reproducibly.

    The draw of a sub-dataset depends only on the seed, its name and its own episode ids (not on other sources).
    The result keeps the input order.
    """
    if per_source is None:
        return list(refs)
    if per_source < 1:
        raise ValueError(f"episodes per source must be >= 1, got {per_source}")
    by_source: dict[str, list[int]] = {}
    for i, ref in enumerate(refs):
        by_source.setdefault(ref.source, []).append(i)
    keep: set[int] = set()
    for source, idx in by_source.items():
        if len(idx) <= per_source:
            keep.update(idx)
            continue
        order = sorted(idx, key=lambda i: refs[i].id)
        rng = np.random.default_rng(stable_seed(seed, "sample", source))
        keep.update(order[j] for j in rng.choice(len(order), size=per_source, replace=False))
    return [r for i, r in enumerate(refs) if i in keep]
