"""TFRecord framing and ``tf.train.Example`` decoding by hand (no TensorFlow): the reading side only.

A TFRecord file is a run of ``length (u64) | masked CRC-32C of length (u32) | data | masked CRC-32C of data``;
each RLDS episode is one record holding a serialized ``tf.train.Example`` (protobuf wire format).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CRC_TABLE: list[int] = []


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses: the ``crc32c`` package when installed, else pure Python."""
    try:
        import crc32c as _fast

        return _fast.crc32c(data)
    except ImportError:
        pass
    if not _CRC_TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_offsets(path: Path) -> Iterator[tuple[int, int]]:
    """(offset of the data, length) of each record, reading only the 12-byte headers (length CRC checked)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = 0
        while pos < size:
            header = fh.read(12)
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header at byte {pos}")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{path}: corrupt record header at byte {pos} (length CRC mismatch)")
            if pos + 12 + length + 4 > size:
                raise ValueError(f"{path}: truncated record at byte {pos}")
            yield pos + 12, length
            pos += 12 + length + 4
            fh.seek(pos)


def read_tfrecord(path: Path, offset: int, length: int, *, verify: bool = False) -> bytes:
    """The record at ``offset`` (from :func:`tfrecord_offsets`); ``verify`` also checks the data CRC (slow)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
        (crc,) = struct.unpack("<I", fh.read(4))
    if len(data) != length:
        raise ValueError(f"{path}: truncated record at byte {offset}")
    if verify and masked_crc(data) != crc:
        raise ValueError(f"{path}: corrupt record at byte {offset} (data CRC mismatch)")
    return data


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message; length-delimited values as memoryview/bytes."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            ln, pos = _varint(buf, pos)
            if pos + ln > n:
                raise ValueError("truncated length-delimited field")
            val, pos = buf[pos : pos + ln], pos + ln
        elif wire == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield num, wire, val


def parse_example(data: bytes) -> dict[str, list]:
    """Decode a serialized ``tf.train.Example`` into {feature name: list of bytes | float | int}."""
    out: dict[str, list] = {}
    for num, _, features in _fields(data):
        if num != 1:
            continue
        for fnum, _, entry in _fields(features):
            if fnum != 1:
                continue
            key, value = "", []
            for enum, _, ev in _fields(entry):
                if enum == 1:
                    key = bytes(ev).decode("utf-8")
                elif enum == 2:
                    value = _parse_feature(ev)
            out[key] = value
    return out


def _parse_feature(buf: bytes) -> list:
    for kind, _, lst in _fields(buf):
        values: list = []
        for _, wire, v in _fields(lst):
            if kind == 1:
                values.append(bytes(v))
            elif kind == 2:
                values.extend(struct.unpack(f"<{len(v) // 4}f", v) if wire == 2 else struct.unpack("<f", v))
            elif kind == 3:
                if wire == 2:
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        values.append(x - (1 << 64) if x >= 1 << 63 else x)
                else:
                    values.append(v - (1 << 64) if v >= 1 << 63 else v)
        return values
    return []
