"""What the demo accepts: the limits and the checks of an upload and an instruction, with clear refusals."""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

from roboreward.video import VideoDecodeError, VideoInfo, probe


class DemoInputError(ValueError):
    """Input the demo refuses (shown in the page as a ``gr.Error``)."""


@dataclass(frozen=True)
class Limits:
    """What the demo accepts. Uploads over ``max_file_mb`` are refused by the server before they land."""

    max_file_mb: float = 50.0
    max_duration_s: float = 120.0
    max_instruction_chars: int = 1000

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
