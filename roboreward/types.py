"""Data types shared across the pipeline: episodes, dataset rows, reward outputs, the scorer protocol."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

#: How an example was derived from its episode.
Kind = Literal["original", "counterfactual", "clipped", "paraphrase"]
KINDS: tuple[str, ...] = ("original", "counterfactual", "clipped", "paraphrase")

#: A video given to a scorer: a file path, raw mp4 bytes, or frames (T, H, W, 3) uint8.
VideoInput = str | Path | bytes | np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class VideoSegment:
    """An episode's frames inside a shared encoded video file, not decoded yet (LeRobot v3 puts several episodes
    in one mp4): ``num_frames`` frames from ``t0`` seconds on (LeRobot reads ``t0 + i / fps``), or without a count
    the frames whose timestamps fall in ``[t0, t1)``."""

    file: Path
    t0: float
    t1: float | None = None
    num_frames: int | None = None


@dataclass(frozen=True)
class EncodedFrames:
    """An episode's frames as its source stores them, one encoded image (JPEG/PNG) per step, not decoded yet (RLDS
    ``steps/observation/<camera>``). Iterating decodes one frame at a time with PIL into a (H, W, 3) uint8 array;
    a frame that does not decode, or whose size is not the first frame's, raises ``SourceError`` naming
    ``episode_id`` and ``key[i]``."""

    blobs: tuple[bytes, ...] = field(repr=False)
    episode_id: str
    key: str  # e.g. ``steps/observation/image``

    def __len__(self) -> int:
        return len(self.blobs)

    def size(self) -> tuple[int, int]:
        """(width, height) of the first frame, read from its header (nothing decoded)."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(self.blobs[0])) as img:
                return img.size
        except Exception as exc:
            raise self._error(0, f"cannot decode frame ({exc})") from None

    def decode(self, i: int) -> np.ndarray:
        """Frame ``i`` as RGB uint8."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(self.blobs[i])) as img:
                return np.asarray(img.convert("RGB"))
        except Exception as exc:
            raise self._error(i, f"cannot decode frame ({exc})") from None

    def check_ends(self) -> None:
        """Decode the first and last frames (a bad tail fails here, before anything is written)."""
        if not self.blobs:
            raise self._error(None, "episode has no frames")
        first = self.decode(0)
        if len(self.blobs) > 1 and self.decode(len(self.blobs) - 1).shape != first.shape:
            raise self._error(len(self.blobs) - 1, "frames have different sizes")

    def __iter__(self) -> Iterator[np.ndarray]:
        shape = None
        for i in range(len(self.blobs)):
            frame = self.decode(i)
            if shape is not None and frame.shape != shape:
                sizes = f"{frame.shape[1]}x{frame.shape[0]}, the first is {shape[1]}x{shape[0]}"
                raise self._error(i, f"frames have different sizes ({sizes})")
            shape = frame.shape
            yield frame

    def _error(self, i: int | None, problem: str) -> Exception:
        from roboreward.sources.common import SourceError  # the readers' error type (sources import this module)

        return SourceError(self.episode_id, self.key if i is None else f"{self.key}[{i}]", problem)


@dataclass
class Episode:
    """One robot episode as yielded by a source reader.

    ``video`` is a path to an encoded video file, a :class:`VideoSegment` of one, a uint8 array of frames
    (T, H, W, 3), or :class:`EncodedFrames` (still-encoded step images);
    ``label`` is the 1-5 progress label when the source provides one (OXE successes: 5).
    """

    id: str
    source: str
    instruction: str
    video: str | Path | np.ndarray | VideoSegment | EncodedFrames
    label: int | None = None
    embodiment: str = ""
    fps: float = 10.0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Example:
    """One row of a RoboReward split (``<split>/metadata.jsonl``): the one row type of the package.

    ``file_name`` is relative to the split folder and its first part names the source subset, e.g.
    ``robo_arena/<...>.mp4``; ``task`` is the instruction and ``reward`` the 1-5 label, as in the public
    release ``teetone/RoboReward``. The fields up to ``label_check`` are the columns we write (:data:`COLUMNS`);
    ``extra`` keeps any other column a dataset has (the release's ``gpt5_mini_check``) and ``video_path`` the
    video resolved inside the split folder when the row was read from disk
    (:func:`roboreward.dataset.read_split`). Neither is written by :meth:`to_row`.
    """

    file_name: str
    task: str
    reward: int
    episode_id: str = ""
    source: str = ""
    embodiment: str = ""
    kind: str = "original"
    original_instruction: str = ""
    clip_fraction: float | None = None
    failure_mode: str | None = None
    validator_answer: str | None = None
    label_check: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    video_path: Path | None = field(default=None, compare=False)

    def to_row(self) -> dict[str, Any]:
        """The JSON row written to metadata.jsonl: our columns in :data:`COLUMNS` order."""
        return {c: getattr(self, c) for c in COLUMNS}

    @property
    def data(self) -> dict[str, Any]:
        """Every column of the row: :meth:`to_row` followed by ``extra``."""
        return {**self.to_row(), **self.extra}

    @property
    def subset(self) -> str:
        """The source subset named by the first path part of ``file_name`` (``default`` for a bare name)."""
        parts = Path(self.file_name).parts
        return parts[0] if len(parts) > 1 else "default"

    @classmethod
    def from_row(cls, row: dict[str, Any], *, video_path: Path | None = None, where: str = "row") -> Example:
        """An example from a metadata.jsonl row, as read (``reward`` is taken as it is: the dataset reader checks
        it is 1..5 first).

        Missing optional columns get their defaults; string columns accept scalars (an int ``episode_id``
        becomes ``"3"``); a list or dict where a column wants a scalar raises ``ValueError`` naming ``where``.
        Columns we do not know go to ``extra`` as they are.
        """
        values: dict[str, Any] = {}
        for name in COLUMNS:
            if name not in row or row[name] is None:
                continue
            value = row[name]
            if isinstance(value, dict | list | tuple):
                raise ValueError(f"{where}: {name} must be a scalar, got {type(value).__name__}")
            if name == "reward":
                values[name] = value
            elif name == "clip_fraction":
                try:
                    values[name] = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{where}: clip_fraction must be a number, got {str(value)[:80]!r}") from None
            else:
                values[name] = value if isinstance(value, str) else str(value)
        extra = {k: v for k, v in row.items() if k not in _COLUMN_SET}
        return cls(**values, extra=extra, video_path=video_path)


#: Columns of metadata.jsonl, in order (the released three first).
COLUMNS: tuple[str, ...] = tuple(f for f in Example.__dataclass_fields__ if f not in ("extra", "video_path"))
_COLUMN_SET = frozenset(COLUMNS)


@dataclass
class RewardOutput:
    """A reward model's answer for one (video, instruction).

    ``score`` is the argmax over 1..5 (or the parsed answer of a text-only API), ``probs`` the distribution
    over 1..5 (sums to 1; ``None`` when the scorer has no distribution), ``expected`` E[score] under probs.
    ``raw_text`` keeps a generated answer; ``parsed`` is False when an answer could not be parsed.
    """

    score: int
    probs: list[float] | None = None
    expected: float | None = None
    raw_text: str | None = None
    parsed: bool = True

    @property
    def value(self) -> float:
        """E[score] when the scorer gave one, else the score: the one scalar reward of an output."""
        return float(self.expected) if self.expected is not None else float(self.score)

    @property
    def progress(self) -> float:
        """Expected progress rescaled to [0, 1] ((:attr:`value` - 1) / 4)."""
        return (self.value - 1.0) / 4.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores (video, instruction) pairs: local models, API models, fakes in tests."""

    name: str

    def score(self, video: VideoInput, instruction: str) -> RewardOutput: ...

    def score_batch(self, videos: Sequence[VideoInput], instructions: Sequence[str]) -> list[RewardOutput]: ...


@dataclass
class RelabelResult:
    """What relabeling produced for one episode (see :mod:`roboreward.relabel`).

    ``instruction`` is the rewritten (cleaned) instruction for the episode's own rows; ``examples`` are the
    derived rows (kinds ``counterfactual`` / ``paraphrase``) whose ``file_name`` the builder fills in;
    ``skipped`` holds the reasons for anything given up on (written to the build report); ``calls`` counts
    LM calls actually made (cache hits excluded).
    """

    instruction: str
    examples: list[Example] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    calls: int = 0
