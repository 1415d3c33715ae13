"""RLDS episodes as exported by TFDS (``<name>/<version>/*.tfrecord-*``, one ``tf.train.Example`` per episode with
``steps/observation/<camera>`` encoded frames and ``steps/language_instruction``), read with the small decoder of
:mod:`roboreward.sources.tfrecord`: no TensorFlow needed. ArrayRecord files (``*.array_record-*``) too when the
optional ``array-record`` package is installed. Every episode is a success: label ``options.success_label``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.sources.common import (
    OXE_EMBODIMENTS,
    EpisodeRef,
    ReaderOptions,
    SourceError,
    choose_camera,
    subset_name,
)
from roboreward.sources.tfrecord import parse_example, read_tfrecord, tfrecord_offsets
from roboreward.types import Episode

#: Default RLDS camera keys, in order of preference (third-person views first).
RLDS_CAMERAS: tuple[str, ...] = ("image", "rgb", "agentview_rgb", "front_rgb", "image_0", "exterior_image_1_left")
RLDS_INSTRUCTION_KEYS: tuple[str, ...] = (
    "steps/language_instruction",
    "steps/observation/natural_language_instruction",
    "steps/observation/language_instruction",
    "episode_metadata/language_instruction",
)


def _rlds_datasets(path: Path) -> list[tuple[str, list[Path]]]:
    """(sub-dataset name, tfrecord files) found under ``path`` (TFDS: <name>/<version>/<name>-<split>.tfrecord-*)."""
    files = sorted(p for pat in ("*.tfrecord*", "*.array_record*") for p in Path(path).rglob(pat) if p.is_file())
    if Path(path).is_file():
        files = [Path(path)]
    if not files:
        raise FileNotFoundError(f"{path}: no TFRecord or ArrayRecord files (*.tfrecord*, *.array_record*) found")
    groups: dict[str, list[Path]] = {}
    for f in files:
        info = f.parent / "dataset_info.json"
        name = ""
        if info.is_file():
            try:
                name = json.loads(info.read_text()).get("name", "")
            except json.JSONDecodeError:
                name = ""
        if not name:
            parent = f.parent
            name = parent.parent.name if re.fullmatch(r"\d+\.\d+\.\d+", parent.name) else parent.name
        groups.setdefault(subset_name(name), []).append(f)
    return sorted(groups.items())


def list_rlds(path: Path, options: ReaderOptions) -> Iterator[EpisodeRef]:
    """One ref per TFRecord record (= one RLDS episode), per TFDS dataset found under ``path``."""
    for name, files in _rlds_datasets(Path(path)):
        n = 0
        for f in files:
            split = "train"
            m = re.search(r"-(train|validation|val|test)\.", f.name)
            if m:
                split = m.group(1)
            if _is_array_record(f):
                for index in range(_array_record_count(f)):
                    eid = f"{name}_{split}_{n:06d}"
                    yield EpisodeRef("rlds", name, eid, eid, {"file": str(f), "index": index})
                    n += 1
                continue
            for offset, length in tfrecord_offsets(f):
                eid = f"{name}_{split}_{n:06d}"
                yield EpisodeRef("rlds", name, eid, eid, {"file": str(f), "offset": offset, "length": length})
                n += 1


def load_rlds(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    from PIL import Image

    f = Path(ref.locator["file"])
    try:
        if "index" in ref.locator:
            data = _array_record_read(f, int(ref.locator["index"]))
        else:
            data = read_tfrecord(f, ref.locator["offset"], ref.locator["length"])
        feats = parse_example(data)
    except ValueError as exc:
        raise SourceError(ref.id, "record", f"cannot parse tf.train.Example ({exc})") from None
    prefix = "steps/observation/"
    cams = sorted(
        k[len(prefix) :]
        for k, v in feats.items()
        if k.startswith(prefix) and v and isinstance(v[0], bytes) and _looks_like_image(v[0])
    )
    if options.camera:
        cam = choose_camera(cams, options.camera, episode_id=ref.id)
    else:
        preferred = [c for c in RLDS_CAMERAS if c in cams]
        cam = preferred[0] if preferred else choose_camera(cams, None, episode_id=ref.id)
    instruction = ""
    for key in RLDS_INSTRUCTION_KEYS:
        for v in feats.get(key, []):
            text = v.decode("utf-8", "replace").strip() if isinstance(v, bytes) else ""
            if text:
                instruction = text
                break
        if instruction:
            break
    if not instruction:
        raise SourceError(ref.id, "language_instruction", "no non-empty language instruction in any step")
    frames = []
    for i, blob in enumerate(feats[prefix + cam]):
        try:
            with Image.open(io.BytesIO(blob)) as img:
                frames.append(np.asarray(img.convert("RGB")))
        except Exception as exc:
            raise SourceError(ref.id, f"steps/observation/{cam}[{i}]", f"cannot decode frame ({exc})") from None
    if not frames:
        raise SourceError(ref.id, f"steps/observation/{cam}", "episode has no frames")
    if len({fr.shape for fr in frames}) != 1:
        raise SourceError(ref.id, f"steps/observation/{cam}", "frames have different sizes")
    meta: dict[str, Any] = {"camera": cam, "file": f.name}
    for key in ("episode_metadata/file_path", "episode_metadata/recording_folderpath"):
        if feats.get(key):
            meta[key.split("/")[-1]] = feats[key][0].decode("utf-8", "replace")
    return Episode(
        id=ref.id,
        source=ref.source,
        instruction=instruction,
        video=np.stack(frames),
        label=options.success_label,
        embodiment=OXE_EMBODIMENTS.get(ref.source, ""),
        fps=10.0,
        meta=meta,
    )


def _is_array_record(path: Path) -> bool:
    return ".array_record" in path.name


def _array_record_module() -> Any:
    try:
        from array_record.python import array_record_module
    except ImportError:
        raise ImportError(
            "reading RLDS ArrayRecord files needs the array-record package: pip install 'roboreward[rlds]'"
        ) from None
    return array_record_module


def _array_record_count(path: Path) -> int:
    reader = _array_record_module().ArrayRecordReader(str(path))
    try:
        return int(reader.num_records())
    finally:
        reader.close()


def _array_record_read(path: Path, index: int) -> bytes:
    reader = _array_record_module().ArrayRecordReader(str(path))
    try:
        return bytes(reader.read([index])[0])
    finally:
        reader.close()


def _looks_like_image(blob: bytes) -> bool:
    return blob[:3] == b"\xff\xd8\xff" or blob[:8] == b"\x89PNG\r\n\x1a\n"
