"""What the demo accepts: the limits and the checks of an upload and an instruction, with clear refusals."""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

from roboreward.video import (
    FRAME_PIXEL_BUDGET,
    VideoDecodeError,
    VideoInfo,
    VideoTooLargeError,
    check_pixel_budget,
    probe,
)


class DemoInputError(ValueError):
    """Input the demo refuses (shown in the page as a ``gr.Error``)."""


@dataclass(frozen=True)
class Limits:
    """What the demo accepts and keeps. Uploads over ``max_file_mb`` are refused by the server before they land;
    a video whose stream header promises more than ``max_pixels`` decoded pixels (width x height x frames) or
    frames over ``max_frame_pixels`` is refused before any frame is decoded; uploads are deleted
    ``keep_uploads_s`` seconds after they arrive (and all of them when the server stops)."""

    max_file_mb: float = 50.0
    max_duration_s: float = 120.0
    max_instruction_chars: int = 1000
    max_pixels: int = 8_000_000_000  # about 120 s of 1080p at 30 fps
    max_frame_pixels: int = FRAME_PIXEL_BUDGET
    keep_uploads_s: int = 900

    def __post_init__(self) -> None:
        for name in ("max_file_mb", "max_duration_s", "max_instruction_chars", "max_pixels", "max_frame_pixels"):
            if not getattr(self, name) > 0:
                raise ValueError(f"demo limits: {name} must be > 0, got {getattr(self, name)!r}")
        if self.keep_uploads_s < 1:
            raise ValueError(f"demo limits: keep_uploads_s must be >= 1 second, got {self.keep_uploads_s!r}")

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


#: Leading bytes of still-image formats (refused even when named .mp4).
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def check_video(path: str | os.PathLike | None, limits: Limits) -> VideoInfo:
    """Refuse anything that is not a readable video within the limits; return its probe."""
    if path is None or not str(path):
        raise DemoInputError("Upload a video first (mp4, webm or mov).")
    p = Path(path)
    name = p.name
    if not p.is_file():
        raise DemoInputError(f"{name}: the uploaded file is missing on the server; upload it again.")
    mime = mimetypes.guess_type(name)[0]
    if mime is not None and not mime.startswith("video/"):
        raise DemoInputError(f"{name}: not a video file ({mime}); upload an mp4, webm or mov.")
    size = p.stat().st_size
    if size == 0:
        raise DemoInputError(f"{name}: the file is empty.")
    if size > limits.max_file_bytes:
        raise DemoInputError(f"{name}: {size / 2**20:.1f} MB is over the {limits.max_file_mb:g} MB limit.")
    with open(p, "rb") as fh:
        head = fh.read(16)
    image = next((kind for magic, kind in _IMAGE_MAGIC if head.startswith(magic)), None)
    if image is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        image = "WebP"
    if image:  # FFmpeg would open a still image as a one-frame "video": judge the content, not the name
        raise DemoInputError(f"{name}: not a video file (the content is a {image} image); upload an mp4, webm or mov.")
    try:
        info = probe(p)
    except VideoDecodeError as exc:
        raise DemoInputError(unreadable(p, exc)) from None
    try:  # from the stream header: a decoded-size bomb is refused before a frame is decoded
        check_pixel_budget(info, limits.max_pixels, frame_budget=limits.max_frame_pixels, where=name)
    except VideoTooLargeError as exc:
        raise DemoInputError(f"{exc}; upload a smaller or shorter video.") from None
    if info.duration > limits.max_duration_s:
        raise DemoInputError(
            f"{name}: the video lasts {info.duration:.1f} s, over the {limits.max_duration_s:g} s limit."
        )
    return info


def check_instruction(instruction: str | None, limits: Limits) -> str:
    """The instruction with its whitespace collapsed; refuse an empty or overly long one."""
    text = " ".join(str(instruction or "").split())
    if not text:
        raise DemoInputError("Type the instruction the robot was given (e.g. 'open the drawer').")
    if len(text) > limits.max_instruction_chars:
        raise DemoInputError(
            f"The instruction has {len(text)} characters, over the {limits.max_instruction_chars} limit."
        )
    return text


def unreadable(path: Path, exc: VideoDecodeError) -> str:
    """The message for a video that does not decode, naming the file without the server's temp folder."""
    return f"{path.name}: not a readable video ({short(str(exc).replace(str(path), path.name))})."


def short(what: object, n: int = 200) -> str:
    """``what`` as text of at most ``n`` characters."""
    text = str(what)
    return text if len(text) <= n else text[: n - 3] + "..."
