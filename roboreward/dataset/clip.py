"""Temporal clipping: partial-progress examples cut from a success video.

A clip keeps the first ``fraction`` of a successful episode and its original instruction; the label says how
far the task had got by then. Defaults (a third-party measurement of the public release)::

    first 10% -> 1   first 30% -> 2   first 50% -> 3   first 70% -> 4   full video -> 5 (the original row)

A clip keeps ``max(1, round(fraction * frames))`` frames. Clipped files are named like the release,
``<episode>_attempt_<n>_score_<label>.mp4`` (``n`` = 1-based position of the clip in the list).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from roboreward.atomic import atomic_path
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


class OddFrameSizeError(ValueError):
    """The source's frame size cannot be encoded as is (H.264 4:2:0 needs even sizes)."""


def encode_prefixes(src: str | Path, outputs: Sequence[tuple[int, str | Path]], *, crf: int = 23) -> int:
    """Decode ``src`` once and H.264-encode each ``(n_frames, path)`` prefix in the same pass.

    Frames go from the decoder to the encoders in YUV 4:2:0 without an RGB round trip and without holding the
    episode in memory, which makes clipping several times cheaper than decoding to arrays and re-encoding each
    clip. Every frame is decoded (so a corrupt tail is still caught). Files are written atomically. Returns the
    number of frames decoded; raises :class:`roboreward.video.VideoDecodeError` naming the file on bad input.
    """
    import av

    from roboreward.video import VideoDecodeError

    if not outputs:
        return 0
    targets = [(int(n), Path(p)) for n, p in outputs]
    count = 0
    try:
        with contextlib.ExitStack() as files, av.open(str(src)) as inp:
            if not inp.streams.video:
                raise VideoDecodeError(f"{src}: no video stream")
            st = inp.streams.video[0]
            st.codec_context.thread_count = 1
            rate = Fraction(st.average_rate or st.guessed_rate or 10).limit_denominator(1000)
            width, height = st.codec_context.width, st.codec_context.height
            if width % 2 or height % 2:
                raise OddFrameSizeError(f"{src}: H.264 4:2:0 needs even frame sizes, got {width}x{height}")
            writers = []
            for _, path in targets:  # each temp file is renamed to its path when the stack closes without error
                container = av.open(str(files.enter_context(atomic_path(path))), mode="w", format="mp4")
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.codec_context.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
                writers.append((container, stream))
            for frame in inp.decode(st):
                if frame.format.name != "yuv420p":
                    frame = frame.reformat(format="yuv420p")
                frame.pts, frame.time_base = count, 1 / rate  # frame index in units of 1/fps
                for (n, _), (container, stream) in zip(targets, writers, strict=True):
                    if count < n:
                        for packet in stream.encode(frame):
                            container.mux(packet)
                count += 1
            for container, stream in writers:
                for packet in stream.encode():
                    container.mux(packet)
                container.close()
            if count == 0:
                raise VideoDecodeError(f"{src}: video has no frames")
    except (VideoDecodeError, OddFrameSizeError):
        raise
    except Exception as exc:
        raise VideoDecodeError(f"{src}: cannot decode video ({type(exc).__name__}: {exc})") from None
    return count
