"""RLDS episodes as exported by TFDS (``<name>/<version>/<name>-<split>.tfrecord-*``, one ``tf.train.Example`` per
episode with ``steps/observation/<camera>`` encoded frames and a language instruction), read with the small
decoder of :mod:`roboreward.sources.tfrecord`: no TensorFlow needed. ArrayRecord files (``*.array_record-*``) too
when the optional ``array-record`` package is installed. Every episode is a success: label
``options.success_label``.

* one version folder per dataset: the newest (``options.source_version`` picks another), never two merged;
* ``options.source_split`` reads one split of the source (``train``, ``test``, ``val``, ...);
* fps: :data:`RLDS_FPS`, the control rates of the Open X-Embodiment datasets, overridable per dataset with
  ``options.source_fps`` (``--source-fps bridge=5``); datasets in neither get :data:`DEFAULT_RLDS_FPS`;
* instruction: the first non-empty of :data:`RLDS_INSTRUCTION_KEYS` (DROID's ``language_instruction_2`` / ``_3``
  when the first is empty; language_table's int32 Unicode code points), or exactly ``options.instruction_key``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.sources import common
from roboreward.sources.common import EpisodeRef, ListingProblem, ReaderOptions, SourceError
from roboreward.sources.tfrecord import parse_example, read_tfrecord, tfrecord_offsets
from roboreward.types import EncodedFrames, Episode

#: Default RLDS camera keys, in order of preference (third-person views first).
RLDS_CAMERAS: tuple[str, ...] = (
    "image",
    "rgb",
    "agentview_rgb",
    "front_rgb",
    "image_0",
    "exterior_image_1_left",
    "rgb_static",
)
#: Instruction features, in order: the first non-empty one is the episode's instruction.
RLDS_INSTRUCTION_KEYS: tuple[str, ...] = (
    "steps/language_instruction",
    "steps/observation/natural_language_instruction",
    "steps/observation/language_instruction",
    "episode_metadata/language_instruction",
    "steps/language_instruction_2",
    "steps/language_instruction_3",
    "steps/observation/instruction",
)
#: Control rate (Hz) of the Open X-Embodiment datasets (the OXE dataset sheet's "control frequency"), by the
#: release's subset name; the frame rate of the videos a build writes from them.
RLDS_FPS: dict[str, float] = {
    "fractal20220817_data": 3, "bridge": 5, "taco_play": 15, "droid": 15, "language_table": 10,
    "austin_sirius": 20, "austin_buds": 20, "austin_sailor": 20, "viola": 20, "toto": 30, "jaco_play": 10,
    "berkeley_autolab_ur5": 5, "stanford_hydra": 10, "roboturk": 10, "kuka": 10, "berkeley_cable_routing": 10,
    "iamlab_cmu_pickup_insert": 20, "ucsd_kitchen": 2, "ucsd_pick_and_place": 3, "utokyo_xarm_bimanual": 10,
    "berkeley_fanuc_manipulation": 10, "cmu_play_fusion": 5, "berkeley_mvp": 5, "berkeley_rpt": 30,
    "kaist_nonprehensile": 10, "dlr_edan_shared_control": 5, "tokyo_u_lsmo": 10, "utokyo_pr2_tabletop": 10,
}  # fmt: skip
DEFAULT_RLDS_FPS = 10.0
_VERSION = re.compile(r"\d+\.\d+\.\d+")
_SPLIT = re.compile(r"-([A-Za-z0-9_]+)\.(?:tfrecord|array_record)")


def rlds_fps(name: str, options: ReaderOptions) -> float:
    """The frame rate of RLDS sub-dataset ``name``: the option, else the OXE table, else the default."""
    return float(options.source_fps.get(name) or RLDS_FPS.get(name) or DEFAULT_RLDS_FPS)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".")) if _VERSION.fullmatch(v) else (-1,)


def _dataset_of(f: Path) -> tuple[str, str]:
    """(sub-dataset name, version folder or '') of a record file."""
    parent, name = f.parent, ""
    info = parent / "dataset_info.json"
    if info.is_file():
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
            name = str(data.get("name") or "") if isinstance(data, dict) else ""
        except (json.JSONDecodeError, UnicodeDecodeError):
            name = ""
    version = parent.name if _VERSION.fullmatch(parent.name) else ""
    if not name:
        name = parent.parent.name if version else parent.name
    return common.subset_name(name), version


def _rlds_datasets(path: Path, options: ReaderOptions) -> list[tuple[str, str, list[Path]]]:
    """(sub-dataset name, version, record files) under ``path``: one version per dataset (the newest, or the
    chosen ``options.source_version``)."""
    path = Path(path)
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for pat in ("*.tfrecord*", "*.array_record*") for p in path.rglob(pat) if p.is_file())
    if not files:
        raise FileNotFoundError(f"{path}: no TFRecord or ArrayRecord files (*.tfrecord*, *.array_record*) found")
    groups: dict[str, dict[str, list[Path]]] = {}
    for f in files:
        name, version = _dataset_of(f)
        groups.setdefault(name, {}).setdefault(version, []).append(f)
    out = []
    for name, versions in sorted(groups.items()):
        if options.source_version:
            if options.source_version not in versions:
                have = ", ".join(sorted(v or "(none)" for v in versions))
                raise ValueError(f"{path}: {name} has no version {options.source_version!r} (available: {have})")
            version = options.source_version
        else:
            version = max(versions, key=_version_key)
        out.append((name, version, versions[version]))
    return out


def _split_of(f: Path) -> str:
    m = _SPLIT.search(f.name)
    return m.group(1) if m else "train"


def list_rlds(path: Path, options: ReaderOptions, problems: list[ListingProblem] | None = None) -> Iterator[EpisodeRef]:
    """One ref per record (= one RLDS episode), per TFDS dataset found under ``path``.

    A damaged or truncated file is recorded in ``problems`` (raised when it is None); its records before the
    damage are still listed.
    """
    for name, version, files in _rlds_datasets(Path(path), options):
        splits = sorted({_split_of(f) for f in files})
        if options.source_split and options.source_split not in splits:
            problem = f"no {options.source_split!r} split (available: {', '.join(splits)})"
            common.skip(problems, ListingProblem(name, str(files[0].parent), "split", problem))
            continue
        counts: dict[str, int] = {}
        for f in files:
            split = _split_of(f)
            if options.source_split and split != options.source_split:
                continue
            try:
                if _is_array_record(f):
                    locs: Iterator[dict[str, Any]] = ({"index": i} for i in range(_array_record_count(f)))
                else:
                    locs = ({"offset": o, "length": n} for o, n in tfrecord_offsets(f))
                for loc in locs:
                    n = counts[split] = counts.get(split, 0) + 1
                    eid = f"{name}_{split}_{n - 1:06d}"
                    yield EpisodeRef("rlds", name, eid, eid, {"file": str(f), "version": version, **loc})
            except (OSError, ValueError) as exc:
                common.skip(problems, ListingProblem(name, str(f), "record", str(exc)), type(exc))


def _text(values: list, key: str) -> str:
    """The first non-empty text of a feature's values (bytes per step, or int32 code points, zero-padded)."""
    if not values:
        return ""
    if isinstance(values[0], bytes):
        for v in values:
            text = v.decode("utf-8", "replace").strip()
            if text:
                return text
        return ""
    if isinstance(values[0], int) and "instruction" in key:
        chars = []
        for c in values:
            if c == 0:
                if chars:
                    break
                continue
            if not 0 < c < 0x110000:
                return ""
            chars.append(chr(c))
        return "".join(chars).strip()
    return ""


def instruction_of(feats: dict[str, list], options: ReaderOptions, episode_id: str) -> str:
    """The episode's instruction (see the module docstring)."""
    if options.instruction_key:
        key = options.instruction_key
        if key not in feats:
            have = ", ".join(k for k in sorted(feats) if "instruction" in k) or "none"
            raise SourceError(episode_id, key, f"no such feature (instruction-like features: {have})")
        text = _text(feats[key], key)
        if not text:
            raise SourceError(episode_id, key, "empty in every step")
        return text
    for key in RLDS_INSTRUCTION_KEYS:
        text = _text(feats.get(key, []), key)
        if text:
            return text
    return ""


def load_rlds(ref: EpisodeRef, options: ReaderOptions) -> Episode:
    """One RLDS episode: its camera's frames decoded (a (T, H, W, 3) array), or with ``options.decode_segments``
    False still encoded (:class:`~roboreward.types.EncodedFrames`, checked at its first and last frame; the builder
    streams it)."""
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
        cam = common.choose_camera(cams, options.camera, episode_id=ref.id)
    else:
        preferred = [c for c in RLDS_CAMERAS if c in cams]
        cam = preferred[0] if preferred else common.choose_camera(cams, None, episode_id=ref.id)
    instruction = instruction_of(feats, options, ref.id)
    if not instruction:
        keys = ", ".join(k for k in RLDS_INSTRUCTION_KEYS if k in feats) or "none of the known keys present"
        raise SourceError(ref.id, "language_instruction", f"no non-empty language instruction in any step ({keys})")
    frames = EncodedFrames(tuple(feats[prefix + cam]), ref.id, prefix + cam)
    if options.decode_segments:
        video: np.ndarray | EncodedFrames = np.stack(list(frames))
    else:
        frames.check_ends()
        video = frames
    meta: dict[str, Any] = {"camera": cam, "file": f.name, "version": ref.locator.get("version", "")}
    for key in ("episode_metadata/file_path", "episode_metadata/recording_folderpath", "episode_id"):
        if feats.get(key) and isinstance(feats[key][0], bytes):
            meta[key.split("/")[-1]] = feats[key][0].decode("utf-8", "replace")[:300]
    return Episode(
        id=ref.id,
        source=ref.source,
        instruction=instruction,
        video=video,
        label=options.success_label,
        embodiment=common.OXE_EMBODIMENTS.get(ref.source, ""),
        fps=rlds_fps(ref.source, options),
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
