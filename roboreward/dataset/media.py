"""Episode videos into the dataset, in the dataset's video format (:class:`VideoFormat`).

When the source's packets already fit the format they are kept as they are (a file copied, a LeRobot v3 segment
remuxed, any codec: ``add_stream_from_template(..., opaque=True)`` copies the decoder's parameters, so AV1 read by
libdav1d is copied too). Otherwise one streaming pass decodes, resamples (uniform frame picks in time that keep
the first and last frame; an area filter to the output size) and H.264-encodes the episode, one frame in memory
at a time: a worker's memory does not grow with episode length or resolution. The encoder uses no B-frames, so
each clip (a prefix of the episode) is the first packets of that one encode, copied: no second encode.

(Over 400 lines: the format, the frame sources, the one-pass transcoder and the remuxer share the same
timestamp, frame-count and error rules; split apart they would each restate them.)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.atomic import atomic_path
from roboreward.dataset.clip import clip_length
from roboreward.sources import SourceError
from roboreward.types import EncodedFrames, VideoSegment
from roboreward.video import VideoDecodeError, VideoInfo, is_environment_error, probe

NATIVE = "native"
#: Timestamps closer than this (seconds) are the same frame.
_EPS = 1e-3


@dataclass(frozen=True)
class VideoFormat:
    """The dataset's video format: at most ``fps`` frames per second and ``size`` pixels on the long side (aspect
    kept, even sizes), H.264 at ``crf``. ``None`` keeps the source's rate / size. The default is the release's
    (``teetone/RoboReward``: 10 fps, 320 px). With both ``None`` any codec is kept as it is."""

    fps: float | None = 10.0
    size: int | None = 320
    crf: int = 23

    def __post_init__(self) -> None:
        if self.fps is not None and not 0 < self.fps <= 1000:
            raise ValueError(f"--video-fps must be in (0, 1000] or {NATIVE!r}, got {self.fps!r}")
        if self.size is not None and not 16 <= self.size <= 16384:
            raise ValueError(f"--video-size must be a long-side length in [16, 16384] pixels or {NATIVE!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {self.crf!r}")

    @classmethod
    def parse(cls, fps: str | float | None = 10.0, size: str | int | None = 320) -> VideoFormat:
        """From the CLI's ``--video-fps`` / ``--video-size`` (a number or ``native``)."""

        def value(text: str | float | None, kind: type, option: str) -> Any:
            if text is None or (isinstance(text, str) and text.strip().lower() == NATIVE):
                return None
            try:
                return kind(text)
            except (TypeError, ValueError):
                raise ValueError(f"{option} must be a number or {NATIVE!r}, got {str(text)[:40]!r}") from None

        return cls(fps=value(fps, float, "--video-fps"), size=value(size, int, "--video-size"))

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """Output width and height for a source of ``width`` x ``height``: scaled so the long side is at most
        ``size``, aspect kept, rounded to even numbers (H.264 4:2:0)."""
        scale = 1.0
        if self.size is not None and max(width, height) > self.size:
            scale = self.size / max(width, height)
        return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)

    def resamples(self, source_fps: float) -> bool:
        """Whether frames are dropped to reach the output rate."""
        return self.fps is not None and source_fps > self.fps * (1 + 1e-6)

    def rate(self, source_fps: float) -> Fraction:
        """The output frame rate (never above the source's)."""
        return Fraction(self.fps if self.resamples(source_fps) else source_fps).limit_denominator(1001)  # type: ignore[arg-type]

    def count(self, source_frames: int, source_fps: float) -> int:
        """Output frames for ``source_frames`` at ``source_fps`` (the duration is kept)."""
        if not self.resamples(source_fps):
            return source_frames
        return max(1, min(source_frames, round(source_frames * self.fps / source_fps)))  # type: ignore[operator]

    def fits(self, info: VideoInfo) -> bool:
        """Whether a source can be kept as it is: its rate and size within the format, H.264 (any codec when both
        rate and size are native)."""
        if self.resamples(info.fps) or self.frame_size(info.width, info.height) != (info.width, info.height):
            return False
        return info.codec == "h264" or (self.fps is None and self.size is None)

    def as_dict(self) -> dict[str, Any]:
        """For the fingerprint, the card and the report."""
        return {"fps": self.fps or NATIVE, "size": self.size or NATIVE, "codec": "h264", "crf": self.crf}


@dataclass
class FrameSource:
    """Frames to transcode: how many the header promises, their rate and size, and a generator of them."""

    label: str
    count: int
    fps: float
    width: int
    height: int
    frames: Callable[[], Iterator[Any]]  # av.VideoFrame, in presentation order
    min_count: int = 1  # fewer decoded frames than this is an error (else the output is cut from what there is)

    @property
    def info(self) -> VideoInfo:
        return VideoInfo(num_frames=self.count, fps=self.fps, width=self.width, height=self.height)

    @classmethod
    def from_file(cls, path: Path, info: VideoInfo | None = None) -> FrameSource:
        info = info or probe(path)
        return cls(str(path), info.num_frames, info.fps, info.width, info.height, lambda: _decode(path))

    @classmethod
    def from_segment(cls, segment: VideoSegment, info: VideoInfo | None = None) -> FrameSource:
        info = info or probe(segment.file)
        count = segment.num_frames or count_packets(segment.file, segment.t0, segment.t1)
        if count <= 0:
            raise VideoDecodeError(f"{segment.file}: no frames in [{segment.t0}, {segment.t1}) s")
        label = f"{segment.file} [{segment.t0:g} s, {count} frames]"
        frames = functools.partial(_decode, segment.file, segment, count)
        # a segment with a frame count (LeRobot's ``length``) may be one frame short, as LeRobot's reader allows
        return cls(label, count, info.fps, info.width, info.height, frames, max(1, (segment.num_frames or 0) - 1))

    @classmethod
    def from_array(cls, frames: np.ndarray, fps: float, label: str) -> FrameSource:
        if frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
            raise VideoDecodeError(f"{label}: frames must have shape (T, H, W, 3), got {tuple(frames.shape)}")
        t, h, w = frames.shape[:3]

        def gen() -> Iterator[Any]:
            import av

            for frame in frames:
                arr = frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)
                yield av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")

        return cls(label, int(t), float(fps), int(w), int(h), gen)

    @classmethod
    def from_encoded(cls, frames: EncodedFrames, fps: float, label: str) -> FrameSource:
        """Still-encoded step images, decoded one at a time as the transcoder asks for them (the size is read from
        the first frame's header, so the pixel budget is checked before anything is decoded)."""
        w, h = frames.size()

        def gen() -> Iterator[Any]:
            import av

            for frame in frames:
                yield av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")

        return cls(label, len(frames), float(fps), int(w), int(h), gen)


def count_packets(path: Path, t0: float = 0.0, t1: float | None = None) -> int:
    """Video packets of ``path`` with timestamps in ``[t0, t1)`` (demuxing only: nothing is decoded)."""
    import av

    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        for packet in container.demux(stream):
            if not packet.size:
                continue
            t = float(packet.pts * tb) if packet.pts is not None and tb else None
            if t is None or (t >= t0 - _EPS and (t1 is None or t < t1 - _EPS)):
                n += 1
    return n


def _decode(path: Path, segment: VideoSegment | None = None, count: int | None = None) -> Iterator[Any]:
    """Frames of ``path`` (of ``segment``: ``count`` frames from its ``t0``), one at a time."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        t0 = segment.t0 if segment is not None else 0.0
        if t0 > 0 and stream.time_base:
            container.seek(int(t0 / stream.time_base), stream=stream, backward=True, any_frame=False)
        n = 0
        for frame in container.decode(stream):
            if segment is not None:
                t = float(frame.time) if frame.time is not None else 0.0
                if t < t0 - _EPS:
                    continue
            yield frame
            n += 1
            if count is not None and n >= count:
                return


def keep_indices(source_frames: int, output_frames: int) -> list[int]:
    """The source frames an output of ``output_frames`` keeps: uniform in time, first and last included."""
    if output_frames >= source_frames:
        return list(range(source_frames))
    if output_frames == 1:
        return [source_frames - 1]
    step = (source_frames - 1) / (output_frames - 1)
    return [int(round(k * step)) for k in range(output_frames)]


class _ShortRead(Exception):
    """The stream held fewer frames than its header said: transcode again with the real count."""

    def __init__(self, decoded: int) -> None:
        self.decoded = decoded


def transcode(
    source: FrameSource,
    fmt: VideoFormat,
    targets: Sequence[tuple[Path, float | None]],
    *,
    tmp_dir: Path | None = None,
    decode_all: bool = False,
) -> tuple[int, int]:
    """Decode ``source`` once and write each ``(path, fraction)`` target in ``fmt`` (``fraction`` None: the whole
    episode; else a clip keeping the first ``fraction`` of the output frames). Returns (output frames, frames
    decoded).

    Each target is written atomically and finished as soon as its last frame is encoded; decoding then stops
    unless ``decode_all`` (which checks that the rest of the source decodes too). Raises
    :class:`VideoDecodeError` naming the source on bad input; environment errors (disk full, permissions)
    propagate as they are.
    """
    try:
        return _transcode(source, fmt, targets, tmp_dir, decode_all)
    except _ShortRead as short:
        if short.decoded == 0:
            raise VideoDecodeError(f"{source.label}: video has no frames") from None
        if short.decoded < source.min_count:
            raise VideoDecodeError(f"{source.label}: expected {source.count} frames, got {short.decoded}") from None
        source.count = short.decoded  # the header over-counted: cut from the frames there are
        return _transcode(source, fmt, targets, tmp_dir, decode_all)


def _transcode(
    source: FrameSource,
    fmt: VideoFormat,
    targets: Sequence[tuple[Path, float | None]],
    tmp_dir: Path | None,
    decode_all: bool,
) -> tuple[int, int]:
    """One encoder for the longest target; every shorter target (a clip: a prefix of it) receives copies of the
    encoder's first packets. The encoder uses no B-frames, so packets come in frame order and any prefix of them
    is a complete stream whose frames are exactly the first frames of the episode's video."""
    import av

    n_out = fmt.count(source.count, source.fps)
    lengths = [n_out if f is None else clip_length(n_out, f) for _, f in targets]
    longest = max(range(len(targets)), key=lambda i: lengths[i])
    keep = keep_indices(source.count, n_out)[: lengths[longest]]
    rate = fmt.rate(source.fps)
    width, height = fmt.frame_size(source.width, source.height)
    decoded = written = 0
    try:
        with contextlib.ExitStack() as files:
            paths = [files.enter_context(atomic_path(path, suffix=".mp4", tmp_dir=tmp_dir)) for path, _ in targets]
            main = files.enter_context(av.open(str(paths[longest]), mode="w", format="mp4"))
            stream = main.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.options = {"crf": str(fmt.crf), "preset": "veryfast", "threads": "1", "bf": "0"}
            prefixes = [_Prefix(paths[i], lengths[i]) for i in range(len(targets)) if i != longest]

            def mux(packets: Any) -> None:
                for packet in packets:
                    copy = (bytes(packet), packet.pts, packet.dts, packet.time_base, packet.is_keyframe)
                    main.mux(packet)  # first: the stream's header (codec extradata) is set when it starts
                    for prefix in prefixes:
                        prefix.add(stream, *copy)

            for index, frame in enumerate(source.frames()):
                decoded = index + 1
                if (frame.width, frame.height) != (source.width, source.height):
                    raise VideoDecodeError(
                        f"{source.label}: frame {index} is {frame.width}x{frame.height}, the stream header says "
                        f"{source.width}x{source.height}"
                    )
                if written >= len(keep) or index != keep[written]:
                    continue
                out = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                out.pts, out.time_base = written, 1 / rate
                mux(stream.encode(out))
                written += 1
                if written == len(keep) and not decode_all:
                    break
            if written < len(keep) or (decode_all and decoded < source.count):
                raise _ShortRead(decoded)
            mux(stream.encode())
            _finish(main)
            for prefix in prefixes:
                prefix.close()
    except (VideoDecodeError, SourceError, _ShortRead):  # SourceError: a bad frame of EncodedFrames, named
        raise
    except Exception as exc:
        if is_environment_error(exc):
            raise
        raise VideoDecodeError(f"{source.label}: cannot decode video ({type(exc).__name__}: {exc})") from None
    return n_out, decoded


class _Prefix:
    """A clip written as the first ``n`` packets of the episode's encoder (stream copy, no second encode)."""

    def __init__(self, path: Path, n: int) -> None:
        self.path, self.n = path, n
        self.container: Any = None
        self.out: Any = None
        self.count = 0

    def add(self, template: Any, data: bytes, pts: int | None, dts: int | None, tb: Any, key: bool) -> None:
        import av

        if self.count >= self.n or pts is None or not data:
            return
        if self.container is None:
            self.container = av.open(str(self.path), mode="w", format="mp4")
            self.out = self.container.add_stream_from_template(template, opaque=True)
        packet = av.Packet(data)
        packet.pts, packet.dts, packet.time_base, packet.is_keyframe = pts, dts, tb, key
        packet.stream = self.out
        self.container.mux(packet)
        self.count += 1
        if self.count == self.n:
            self.close()

    def close(self) -> None:
        if self.container is not None:
            _finish(self.container)
            self.container = None
        if self.count != self.n:
            raise VideoDecodeError(f"{self.path}: the encoder gave {self.count} of the clip's {self.n} frames")


def _finish(container: Any) -> None:
    """Close a written container (its trailer is written here: a full disk shows up now)."""
    container.close()


class _NotExact(Exception):
    """The segment cannot be copied as it is."""


def remux_segment(src: Path, t0: float, dst: Path, num_frames: int, *, tmp_dir: Path | None = None) -> bool:
    """Copy the ``num_frames`` packets from ``t0`` of ``src`` into ``dst`` without re-encoding, when that is exact.

    LeRobot v3 concatenates per-episode encodes, so an episode's segment starts on a keyframe and its packets
    sit between that keyframe and the next episode's. Returns False (writing nothing) when the segment does not
    start on a keyframe or does not end where a keyframe (or the file) does; the caller then transcodes. Any
    codec mp4 holds is copied (AV1 too); decode and environment errors are raised, never turned into a silent
    re-encode.
    """
    import av

    try:
        with av.open(str(src)) as inp:
            st = inp.streams.video[0]
            tb = st.time_base
            if tb is None:
                return False
            if t0 > 0:
                inp.seek(int(t0 / tb), stream=st, backward=True, any_frame=False)
            packets = []
            started = False
            for pkt in inp.demux(st):
                if pkt.pts is None or pkt.size == 0:
                    continue
                if not started:
                    t = float(pkt.pts * tb)
                    if pkt.is_keyframe and abs(t - t0) < _EPS:
                        started = True
                    elif t > t0 + _EPS and pkt.is_keyframe:
                        return False
                    else:
                        continue
                elif len(packets) >= num_frames:
                    if pkt.is_keyframe:
                        break
                    return False  # the next packet is not a keyframe: the segment does not end on a GOP boundary
                packets.append(pkt)
            if not started or len(packets) != num_frames:
                return False
            offset = packets[0].pts
            with atomic_path(dst, suffix=".mp4", tmp_dir=tmp_dir) as tmp, av.open(str(tmp), "w", format="mp4") as out:
                try:
                    ost = out.add_stream_from_template(st, opaque=True)
                except ValueError:  # mp4 cannot hold this codec: transcode (raised so the temp file is removed)
                    raise _NotExact from None
                for pkt in packets:
                    pkt.pts -= offset
                    if pkt.dts is not None:
                        pkt.dts -= offset
                    pkt.stream = ost
                    out.mux(pkt)
    except _NotExact:
        return False
    except Exception as exc:
        if is_environment_error(exc):
            raise
        msg = f"cannot remux {num_frames} frames from {t0} s ({type(exc).__name__}: {exc})"
        raise VideoDecodeError(f"{src}: {msg}") from None
    return True


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_record(path: Path) -> list:
    """``[size, sha256]`` of a written file, as a shard's done marker records it."""
    return [os.path.getsize(path), sha256_file(path)]
