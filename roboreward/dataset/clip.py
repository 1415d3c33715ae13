"""Temporal clipping: partial-progress examples cut from a success video.

A clip keeps the first ``fraction`` of a successful episode and its original instruction; the label says how
far the task had got by then. Defaults (a third-party measurement of the public release)::

    first 10% -> 1   first 30% -> 2   first 50% -> 3   first 70% -> 4   full video -> 5 (the original row)

A clip keeps ``max(1, round(fraction * frames))`` frames. Clipped files are named like the release,
``<episode>_attempt_<n>_score_<label>.mp4`` (``n`` = 1-based position of the clip in the list).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from roboreward.rubric import check_score

#: (fraction of the episode kept, label) pairs.
DEFAULT_CLIPS: tuple[tuple[float, int], ...] = ((0.1, 1), (0.3, 2), (0.5, 3), (0.7, 4))


def parse_clips(spec: str | Sequence | None) -> tuple[tuple[float, int], ...]:
    """Parse ``"0.1:1,0.3:2,0.5:3,0.7:4"`` (or bare fractions ``"0.1,0.3,0.5,0.7"``, labelled 1, 2, 3, 4 in
    increasing order); ``""`` / ``"none"`` disables clipping; ``None`` gives the defaults."""
    if spec is None:
        return DEFAULT_CLIPS
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in ("", "none", "off"):
            return ()
        items = [p.strip() for p in text.split(",") if p.strip()]
        pairs: list[tuple[float, int | None]] = []
        for item in items:
            frac, _, label = item.partition(":")
            try:
                pairs.append((float(frac), int(label) if label else None))
            except ValueError:
                raise ValueError(f"bad clip spec {item!r}: use FRACTION[:LABEL], e.g. 0.3:2") from None
    else:
        pairs = [(float(p[0]), int(p[1])) if isinstance(p, Sequence) else (float(p), None) for p in spec]
    if any(label is None for _, label in pairs):
        if any(label is not None for _, label in pairs):
            raise ValueError("give a label for every clip fraction or for none")
        if len(pairs) > 4:
            raise ValueError("without labels at most 4 fractions (labelled 1..4) can be given")
        pairs = [(f, i + 1) for i, (f, _) in enumerate(sorted(pairs))]
    out = []
    for frac, label in pairs:
        if not 0.0 < frac < 1.0:
            raise ValueError(f"clip fraction {frac!r} must be in (0, 1) (the full video is the original row)")
        label = check_score(label, where=f"clip label for fraction {frac}")
        if label == 5:
            raise ValueError(f"clip fraction {frac!r}: a partial video cannot be labelled 5")
        out.append((frac, label))
    by_frac = sorted(out)
    if any(a[1] > b[1] for a, b in zip(by_frac, by_frac[1:], strict=False)):
        raise ValueError(f"clip labels must not decrease as the fraction grows: {by_frac}")
    return tuple(out)


def clip_length(num_frames: int, fraction: float) -> int:
    """Frames kept by a clip of ``fraction`` (at least one)."""
    if num_frames <= 0:
        raise ValueError("video has no frames")
    return max(1, min(num_frames, int(round(num_frames * fraction))))


def clip_frames(frames: np.ndarray, fraction: float) -> np.ndarray:
    """The first ``fraction`` of ``frames`` (T, H, W, 3)."""
    return frames[: clip_length(len(frames), fraction)]


def clip_file_name(stem: str, attempt: int, score: int) -> str:
    """``<stem>_attempt_<n>_score_<score>.mp4``, as in the release."""
    return f"{stem}_attempt_{attempt}_score_{check_score(score)}.mp4"


def encode_prefixes(
    src: str | Path, outputs: Sequence[tuple[int, str | Path]], *, crf: int = 23, tmp_dir: Path | None = None
) -> int:
    """Decode ``src`` once and H.264-encode each ``(n_frames, path)`` prefix in the same pass, at the source's
    rate and size (:func:`roboreward.dataset.media.transcode`); every frame is decoded, so a corrupt tail is
    caught. Files are written atomically. Returns the number of frames decoded; raises
    :class:`roboreward.video.VideoDecodeError` naming the file on bad input."""
    from roboreward.dataset.media import FrameSource, VideoFormat, transcode

    if not outputs:
        return 0
    source = FrameSource.from_file(Path(src))
    targets = [(Path(p), min(1.0, int(n) / source.count)) for n, p in outputs]
    return transcode(source, VideoFormat(fps=None, size=None, crf=crf), targets, tmp_dir=tmp_dir, decode_all=True)[1]
