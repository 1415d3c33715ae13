"""Video I/O: probing, uniform frame sampling that decodes only the frames it needs, and mp4 writing.

Decoding uses torchcodec (seek-based ``get_frames_at``) when it loads, otherwise PyAV (a packet index, then a
seek to the keyframe before each sampled frame when that skips decoding). Both return the same frames and handle
H.264 and AV1 (LeRobot datasets use AV1; OpenCV cannot decode it). Also here, for every stage that reads videos:
the pixel budget checked from the stream header (:func:`check_pixel_budget`), the first-and-last-frame check
(:func:`check_ends`) and the rule telling environment errors from bad input (:func:`is_environment_error`).
(Over 400 lines: two decoders with one error policy.)
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from roboreward.atomic import atomic_path
from roboreward.types import VideoInput


class VideoDecodeError(ValueError):
    """A video that cannot be opened or decoded (corrupt, empty, not a video)."""


class VideoTooLargeError(VideoDecodeError):
    """A video whose stream header promises more pixels than the caller's budget (refused before decoding)."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video's stream header says: frame count, rate, size and the codec's name."""

    num_frames: int
    fps: float
    width: int
    height: int
    codec: str = ""

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


#: Default pixel budgets: decoded pixels of one video (width x height x frames; a 1080p episode at 30 fps of about
#: 16 minutes) and of one frame (4096 x 4096).
PIXEL_BUDGET = 60_000_000_000
FRAME_PIXEL_BUDGET = 4096 * 4096


def check_pixel_budget(
    info: VideoInfo,
    budget: int | None = PIXEL_BUDGET,
    *,
    frame_budget: int | None = FRAME_PIXEL_BUDGET,
    where: str = "video",
) -> None:
    """Refuse (:class:`VideoTooLargeError`) a video whose header promises more than ``budget`` decoded pixels
    (width x height x frames) or frames larger than ``frame_budget`` pixels; ``None`` turns a bound off. Call it
    on :func:`probe`'s answer, before decoding (the header is read without decoding a frame)."""
    frame = int(info.width) * int(info.height)
    if frame_budget is not None and frame > frame_budget:
        raise VideoTooLargeError(
            f"{where}: frames of {info.width}x{info.height} ({frame:,} pixels) exceed the frame budget of "
            f"{frame_budget:,} pixels"
        )
    total = frame * int(info.num_frames)
    if budget is not None and total > budget:
        raise VideoTooLargeError(
            f"{where}: {info.width}x{info.height} x {info.num_frames} frames = {total:,} pixels exceed the budget "
            f"of {budget:,} pixels"
        )


@dataclass
class SampledVideo:
    """Frames sampled from a video with where they came from (the metadata Qwen's video processors want)."""

    frames: np.ndarray  # (K, H, W, 3) uint8
    indices: list[int]
    source_fps: float
    total_frames: int

    @property
    def sampled_fps(self) -> float:
        """The effective frame rate of the sampled clip (frames per second of source time)."""
        if self.total_frames <= 0 or self.source_fps <= 0:
            return 1.0
        return max(len(self.indices) / (self.total_frames / self.source_fps), 1e-3)

    def metadata(self) -> dict:
        """``video_metadata`` for transformers' Qwen video processors."""
        return {
            "fps": float(self.source_fps),
            "total_num_frames": int(self.total_frames),
            "frames_indices": [int(i) for i in self.indices],
            "duration": float(self.total_frames / self.source_fps) if self.source_fps > 0 else None,
        }


def sample_indices(
    total: int,
    source_fps: float,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int = 32,
    min_frames: int = 1,
) -> list[int]:
    """Uniform frame indices over ``[0, total)``; always ends on the last frame (rewards judge the final state).

    Give ``num_frames`` (exact count) or ``fps`` (frames per second of video, clamped to
    ``[min_frames, max_frames]``); not both. With neither, ``max_frames`` frames. Indices may repeat when the
    video has fewer frames than ``min_frames`` (short videos are padded by repeating frames).
    """
    if total <= 0:
        raise VideoDecodeError("video has no frames")
    if num_frames is not None and fps is not None:
        raise ValueError("give num_frames or fps, not both")
    if num_frames is None:
        if fps is not None:
            duration = total / source_fps if source_fps > 0 else total
            num_frames = round(duration * fps)
        else:
            num_frames = max_frames
        num_frames = max(min_frames, min(max_frames, num_frames, max(total, min_frames)))
    num_frames = max(1, int(num_frames))
    if num_frames == 1:
        return [total - 1]
    positions = np.linspace(0, total - 1, num_frames)
    return [int(round(p)) for p in positions]


def _as_source(video: VideoInput) -> str | io.BytesIO:
    if isinstance(video, bytes | bytearray):
        if not video:
            raise VideoDecodeError("video bytes are empty")
        return io.BytesIO(bytes(video))
    path = Path(video)  # type: ignore[arg-type]
    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: video file is empty")
    return str(path)


def _label(video: VideoInput) -> str:
    return "<bytes>" if isinstance(video, bytes | bytearray) else str(video)


def probe(video: str | Path | bytes) -> VideoInfo:
    """Frame count, fps and size of an encoded video (reads the container, decodes at most one frame)."""
    import av

    src = _as_source(video)
    try:
        with av.open(src) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{_label(video)}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 10.0
            n = int(stream.frames or 0)
            if n <= 0:  # some containers do not record the count: count packets
                n = sum(1 for p in container.demux(stream) if p.size)
            width, height = stream.codec_context.width, stream.codec_context.height
            codec = stream.codec_context.codec.name
    except VideoDecodeError:
        raise
    except Exception as exc:  # av raises many error types for corrupt input
        if is_environment_error(exc):
            raise
        raise VideoDecodeError(f"{_label(video)}: cannot open video ({type(exc).__name__}: {exc})") from None
    if n <= 0:
        raise VideoDecodeError(f"{_label(video)}: video has no frames")
    return VideoInfo(num_frames=n, fps=fps, width=width, height=height, codec=codec)


#: errno values that say the machine, not the input, is at fault (disk full, quota, read-only, permissions, I/O,
#: out of file handles or memory).
ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO", "EMFILE", "ENFILE", "ENOMEM")
    if hasattr(errno, name)
)


def is_environment_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a fault of the machine rather than of the input: an
    OSError with an errno of :data:`ENVIRONMENT_ERRNOS` (PyAV's errors are OSErrors too) or a MemoryError."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _decode_error(video: VideoInput, exc: Exception) -> Exception:
    """What to raise for ``exc`` met while decoding ``video``: ``exc`` itself when it is a
    :class:`VideoDecodeError` or an environment error (:func:`is_environment_error`), else a
    :class:`VideoDecodeError` naming the file."""
    if isinstance(exc, VideoDecodeError) or is_environment_error(exc):
        return exc
    return VideoDecodeError(f"{_label(video)}: cannot decode video ({type(exc).__name__}: {exc})")


def check_ends(video: str | Path) -> int:
    """Decode a video's first and last frames (a truncated or corrupt tail fails here, not in a training run);
    returns the number of frames decoded. Seeks to the last keyframe, so it decodes one GOP at most past the
    first frame. Raises :class:`VideoDecodeError` naming the file."""
    import av

    src = _as_source(video)
    decoded = 0
    try:
        with av.open(src) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for _frame in container.decode(stream):
                decoded = 1
                break
            if not decoded:
                raise VideoDecodeError(f"{_label(video)}: video has no frames")
            last_key = None
            container.seek(0, stream=stream)
            for packet in container.demux(stream):
                if packet.size and packet.is_keyframe and packet.pts is not None:
                    last_key = packet.pts
            container.seek(last_key or 0, stream=stream, backward=True, any_frame=False)
            tail = 0
            for _frame in container.decode(stream):
                tail += 1
            if tail == 0:
                raise VideoDecodeError(f"{_label(video)}: the last frames do not decode")
            decoded += tail
    except Exception as exc:
        raise _decode_error(video, exc) from None
    return decoded


def _decode_pyav(src: str | io.BytesIO, indices: list[int]) -> list[np.ndarray]:
    """Decode just the wanted frames: seeking to the keyframe before a frame when that skips decoding, else
    one forward pass (stops after the last one). Frame ``i`` is the ``i``-th in presentation order."""
    try:
        return _decode_pyav_seek(src, indices)
    except _NoSeekIndex:
        if isinstance(src, io.BytesIO):
            src.seek(0)
        return _decode_pyav_forward(src, indices)


class _NoSeekIndex(Exception):
    """The stream's packets do not give a usable frame index (no pts, duplicates): decode forward instead."""


def _keyframe_index(src: str | io.BytesIO) -> tuple[list[int], list[int]]:
    """Presentation timestamps of all frames in order, and for each frame the index of the keyframe at or
    before it, from the packets alone (demuxing reads the file but decodes nothing)."""
    import av

    with av.open(src) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, bool(p.is_keyframe)) for p in container.demux(stream) if p.size]
    if isinstance(src, io.BytesIO):
        src.seek(0)
    if not packets or any(pts is None for pts, _ in packets):
        raise _NoSeekIndex
    packets.sort()
    pts = [p for p, _ in packets]
    if len(set(pts)) != len(pts):
        raise _NoSeekIndex
    key_before, k = [], 0
    for i, (_, is_key) in enumerate(packets):
        k = i if is_key else k
        key_before.append(k)
    return pts, key_before


def _decode_pyav_seek(src: str | io.BytesIO, indices: list[int]) -> list[np.ndarray]:
    import av

    pts, key_before = _keyframe_index(src)
    n = len(pts)
    wanted = sorted({min(i, n - 1) for i in indices})
    position = {p: i for i, p in enumerate(pts)}
    out: dict[int, np.ndarray] = {}
    last = None
    with av.open(src) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = None
        current = -1  # index of the last decoded frame
        for target in wanted:  # ascending: each target is the first frame decoded at or after it
            if frames is None or key_before[target] > current:  # the keyframe is ahead: jump there
                container.seek(pts[key_before[target]], stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
            if current < target:
                for frame in frames:
                    i = position.get(frame.pts) if frame.pts is not None else None
                    if i is None:
                        raise _NoSeekIndex
                    current, last = i, frame
                    if i >= target:
                        break
                else:  # the stream ended before the target: use its final frame
                    if last is None:
                        return []
                    current = n
            out[target] = last.to_ndarray(format="rgb24")
    return [out[min(i, n - 1)] for i in indices]


def _decode_pyav_forward(src: str | io.BytesIO, indices: list[int]) -> list[np.ndarray]:
    """Decode just the wanted frames in one forward pass (stops after the last one)."""
    import av

    wanted = sorted(set(indices))
    out: dict[int, np.ndarray] = {}
    last = None
    with av.open(src) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        target = iter(wanted)
        nxt = next(target, None)
        for i, frame in enumerate(container.decode(stream)):
            last = frame
            if nxt is None:
                break
            if i == nxt:
                out[i] = frame.to_ndarray(format="rgb24")
                nxt = next(target, None)
        if nxt is not None and last is not None:  # container over-reported its count: use the final frame
            final = last.to_ndarray(format="rgb24")
            while nxt is not None:
                out[nxt] = final
                nxt = next(target, None)
    return [out[i] for i in indices]


def read_video(
    video: VideoInput,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int = 32,
    min_frames: int = 1,
) -> SampledVideo:
    """Sample frames uniformly from a video path, mp4 bytes, or an in-memory frame array.

    Only the sampled frames are decoded. Raises :class:`VideoDecodeError` naming the file on bad input.
    """
    if isinstance(video, np.ndarray) or (isinstance(video, Sequence) and not isinstance(video, str | bytes)):
        frames = as_frames(video)
        idx = sample_indices(
            len(frames), 10.0, num_frames=num_frames, fps=fps, max_frames=max_frames, min_frames=min_frames
        )
        return SampledVideo(frames=frames[idx], indices=idx, source_fps=10.0, total_frames=len(frames))
    src = _as_source(video)  # type: ignore[arg-type]
    decoder = _torchcodec_decoder(src)
    if decoder is not None:
        try:
            md = decoder.metadata
            total, src_fps = int(md.num_frames or 0), float(md.average_fps or 0) or 10.0
            idx = sample_indices(
                total, src_fps, num_frames=num_frames, fps=fps, max_frames=max_frames, min_frames=min_frames
            )
            frames = decoder.get_frames_at(indices=idx).data.permute(0, 2, 3, 1).numpy()
            return SampledVideo(
                frames=np.ascontiguousarray(frames), indices=idx, source_fps=src_fps, total_frames=total
            )
        except Exception as exc:
            raise _decode_error(video, exc) from None
    info = probe(video)  # type: ignore[arg-type]
    idx = sample_indices(
        info.num_frames, info.fps, num_frames=num_frames, fps=fps, max_frames=max_frames, min_frames=min_frames
    )
    try:
        frames = _decode_pyav(_as_source(video), idx)
    except Exception as exc:
        raise _decode_error(video, exc) from None
    if not frames:
        raise VideoDecodeError(f"{_label(video)}: video has no frames")
    return SampledVideo(frames=np.stack(frames), indices=idx, source_fps=info.fps, total_frames=info.num_frames)


_TORCHCODEC_OK: bool | None = None


def _torchcodec_decoder(src: str | io.BytesIO):
    """A torchcodec ``VideoDecoder`` (seek-based, decodes only requested frames), or None if unavailable.

    torchcodec needs the system FFmpeg libraries; without them we fall back to PyAV. Set
    ``ROBOREWARD_DECODER=pyav`` to force the fallback.
    """
    global _TORCHCODEC_OK
    if _TORCHCODEC_OK is False or os.environ.get("ROBOREWARD_DECODER", "").lower() == "pyav":
        return None
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception:  # ImportError, or FFmpeg libraries missing (RuntimeError/OSError)
        _TORCHCODEC_OK = False
        return None
    _TORCHCODEC_OK = True
    label = src if isinstance(src, str) else "<bytes>"
    data = src.getvalue() if isinstance(src, io.BytesIO) else src
    try:
        decoder = VideoDecoder(data, seek_mode="exact", num_ffmpeg_threads=1)
    except Exception as exc:
        raise VideoDecodeError(f"{label}: cannot open video ({type(exc).__name__}: {exc})") from None
    if not decoder.metadata.num_frames:
        raise VideoDecodeError(f"{label}: video has no frames")
    return decoder


def read_all_frames(video: str | Path | bytes) -> tuple[np.ndarray, float]:
    """Decode every frame (T, H, W, 3) and return it with the fps. For short episode videos only."""
    import av

    src = _as_source(video)
    try:
        with av.open(src) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 10.0
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except Exception as exc:
        raise _decode_error(video, exc) from None
    if not frames:
        raise VideoDecodeError(f"{_label(video)}: video has no frames")
    return np.stack(frames), fps


def as_frames(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Validate and stack frames into a (T, H, W, 3) uint8 array."""
    arr = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise VideoDecodeError(f"frames must have shape (T, H, W, 3), got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise VideoDecodeError("video has no frames")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def write_video(
    path: str | Path, frames: np.ndarray | Sequence[np.ndarray], fps: float = 10.0, *, crf: int = 23
) -> Path:
    """Encode frames as an H.264 mp4 (yuv420p, even dimensions), atomically (temp file + rename)."""
    import av

    arr = as_frames(frames)
    h, w = arr.shape[1] - arr.shape[1] % 2, arr.shape[2] - arr.shape[2] % 2
    if h == 0 or w == 0:
        raise VideoDecodeError(f"frames too small to encode: {arr.shape[1]}x{arr.shape[2]}")
    arr = arr[:, :h, :w]
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.codec_context.options = {"threads": "1"}
        for frame in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
