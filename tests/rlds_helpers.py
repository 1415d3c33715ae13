"""Test-only writers for RLDS fixtures: TFRecord framing and ``tf.train.Example`` encoding (the inverse of
:mod:`roboreward.sources.tfrecord`, which only reads)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from roboreward.sources.tfrecord import masked_crc


def write_tfrecord(path: Path, records: Sequence[bytes]) -> Path:
    """Write records with TFRecord framing (for fixtures and generated benchmark data)."""
    with open(path, "wb") as fh:
        for data in records:
            header = struct.pack("<Q", len(data))
            fh.write(header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data)))
    return path


def _enc_varint(x: int) -> bytes:
    x &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_field(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_example(features: dict[str, list]) -> bytes:
    """Serialize {name: list of bytes | str | float | int} as a ``tf.train.Example`` (inverse of parse_example)."""
    entries = b""
    for key in sorted(features):
        values = list(features[key])
        if values and isinstance(values[0], bytes | str):
            inner = b"".join(_enc_field(1, v.encode() if isinstance(v, str) else v) for v in values)
            feature = _enc_field(1, inner)
        elif values and isinstance(values[0], float):
            feature = _enc_field(2, _enc_field(1, struct.pack(f"<{len(values)}f", *values)))
        else:
            feature = _enc_field(3, _enc_field(1, b"".join(_enc_varint(int(v)) for v in values)))
        entries += _enc_field(1, _enc_field(1, key.encode()) + _enc_field(2, feature))
    return _enc_field(1, entries)
