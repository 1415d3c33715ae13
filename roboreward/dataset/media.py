"""Episode videos into the dataset: stream copy (remux) where exact, else H.264 encode; file hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from roboreward.atomic import atomic_path


def encode(path: Path, frames: Any, fps: float) -> None:
    """H.264-encode frames with :func:`roboreward.video.write_video` (atomic, world-readable like copies)."""
    from roboreward.video import write_video

    write_video(path, frames, fps)


def remux_segment(src: Path, t0: float, t1: float | None, dst: Path, num_frames: int) -> bool:
    """Copy the packets of ``[t0, t1)`` of ``src`` into ``dst`` without re-encoding, when that is exact.

    LeRobot v3 concatenates per-episode encodes, so an episode's segment starts on a keyframe and its packets
    sit between that keyframe and the next episode's. Returns False (writing nothing) when the segment does not
    start on a keyframe or its packet count is not ``num_frames``; the caller then encodes the decoded frames.
    """
    import av

    eps = 1e-3
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
                t = float(pkt.pts * tb)
                if not started:
                    if pkt.is_keyframe and abs(t - t0) < eps:
                        started = True
                    elif t > t0 + eps and pkt.is_keyframe:
                        return False
                    else:
                        continue
                elif pkt.is_keyframe and t1 is not None and t >= t1 - eps:
                    break
                if t1 is not None and t >= t1 - eps:
                    return False  # a packet past the end before the next keyframe: not a clean segment
                packets.append(pkt)
            if not started or len(packets) != num_frames:
                return False
            offset = packets[0].pts
            with atomic_path(dst, suffix=".mp4") as tmp, av.open(str(tmp), mode="w", format="mp4") as out:
                ost = out.add_stream_from_template(st)
                for pkt in packets:
                    pkt.pts -= offset
                    if pkt.dts is not None:
                        pkt.dts -= offset
                    pkt.stream = ost
                    out.mux(pkt)
    except (av.error.FFmpegError, ValueError, OSError):
        return False
    return True


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
