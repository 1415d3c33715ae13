"""The dataset card (README.md) of a build, through huggingface_hub's ``DatasetCard`` / ``DatasetCardData``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

#: Features of a row in the card's ``configs`` (datasets' names and dtypes; ``video`` is ``file_name`` decoded).
FEATURES = [
    ("video", "video"),
    ("task", "string"),
    ("reward", "int64"),
    ("episode_id", "string"),
    ("source", "string"),
    ("embodiment", "string"),
    ("kind", "string"),
    ("original_instruction", "string"),
    ("clip_fraction", "float64"),
    ("failure_mode", "string"),
    ("validator_answer", "string"),
    ("label_check", "string"),
]


#: The Hub's size buckets (``size_categories``): upper bounds and their names.
SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
]


@dataclass(frozen=True)
class CardLicense:
    """The license the card declares (``build --license``): an SPDX-style Hub id, or ``other`` with a name and a
    link (the Hub wants both for ``other``; by default the card's own License section, which says the episodes keep
    their source datasets' licenses)."""

    license: str = "other"
    name: str | None = None
    link: str | None = None

    def metadata(self) -> dict[str, str]:
        if self.license != "other":
            return {"license": self.license}
        return {
            "license": "other",
            "license_name": self.name or "source-datasets",
            "license_link": self.link or "README.md",
        }

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` examples."""
    return next((name for bound, name in SIZE_CATEGORIES if n < bound), "n>10M")


def _short_spec(spec: str) -> str:
    """``reader:<folder name>`` (the card does not publish local paths; build_report.json keeps them)."""
    reader, sep, path = spec.partition(":")
    return f"{reader}:{Path(path).name}" if sep else spec


def video_line(video: dict | None) -> str:
    """The card's line on the video format (``VideoFormat.as_dict()``)."""
    if not video:
        return "as the sources give them"
    fps = f"at most {video['fps']:g} fps" if video["fps"] != "native" else "the source's frame rate"
    size = f"at most {video['size']} px on the long side" if video["size"] != "native" else "the source's size"
    return (
        f"H.264 mp4 (crf {video['crf']}), {fps}, {size} (aspect kept); a source that already fits is copied "
        "without re-encoding; clips are cut from the same decoding pass"
    )


def dataset_card(report: dict, license: CardLicense | None = None) -> str:
    """README.md: the YAML header (``configs`` with the features, so ``datasets.load_dataset`` opens the folder
    offline) through huggingface_hub's :class:`~huggingface_hub.DatasetCardData`, then the counts and provenance."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from roboreward.dataset.reader import split_folder
    from roboreward.rubric import RUBRIC, SCORE_NAMES

    splits = report["splits"]
    license = license or CardLicense()
    features = [{"name": n, "dtype": t} for n, t in FEATURES]
    split_sizes = [{"name": s, "num_examples": c["examples"]} for s, c in splits.items()]
    data = DatasetCardData(
        **license.metadata(),
        size_categories=[size_category(sum(c["examples"] for c in splits.values()))],
        pretty_name="RoboReward (built with roboreward)",
        task_categories=["video-classification", "robotics"],
        tags=["robotics", "reward-model", "video", "roboreward"],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{split_folder(s)}/**"} for s in splits],
                "features": features,
            }
        ],
        dataset_info={"features": [dict(f) for f in features], "splits": split_sizes},  # a copy: no YAML anchor
    )
    cfg = report["config"]
    lines = [
        "# RoboReward dataset (built with `roboreward build`)",
        "",
        "Robot episode videos with a task instruction and a 1-5 episodic progress reward, in the layout of the",
        "public release [`teetone/RoboReward`](https://huggingface.co/datasets/teetone/RoboReward) "
        "(arXiv 2601.00675): datasets' `videofolder` convention, `<split>/metadata.jsonl` rows with `file_name`, "
        "`task`, `reward` beside the mp4 files. The first part of `file_name` names the source subset.",
        "",
        "## Rubric",
        "",
    ]
    lines += [f"- **{s} - {SCORE_NAMES[s]}**: {RUBRIC[s]}" for s in sorted(RUBRIC)]
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'ds = load_dataset("<this folder or repo id>")',
        'row = ds["train"][0]  # row["video"] is a torchcodec VideoDecoder',
        "```",
        "",
        'Publish with `hf upload <user>/<name> <this folder> . --repo-type dataset --exclude ".build/*" '
        '--exclude ".cache/*"` '
        '(or `HfApi().upload_folder(..., repo_type="dataset")`).',
        "",
        "## Columns",
        "",
        "| column | meaning |",
        "|---|---|",
        "| `file_name` / `video` | the episode (or clip) video, `<source>/<...>.mp4` |",
        "| `task` | the instruction the reward refers to |",
        "| `reward` | 1-5 progress label |",
        "| `episode_id`, `source`, `embodiment` | where the example comes from; split by episode |",
        "| `kind` | original, clipped (temporal clip of a success), counterfactual or paraphrase |",
        "| `original_instruction` | the source's instruction before cleaning/relabeling |",
        "| `clip_fraction` | fraction of the episode a clipped example keeps |",
        "| `failure_mode`, `validator_answer`, `label_check` | relabeling provenance, when relabeled |",
        "",
        "## Build",
        "",
        f"- sources: {', '.join(f'`{_short_spec(s)}`' for s in cfg['sources'])}",
        f"- seed: {cfg['seed']}; episodes per source: {cfg['episodes_per_source'] or 'all'}",
        f"- split fractions (train, validation, test; by episode): {cfg['split_fractions']}",
        "- temporal clips (fraction -> reward): "
        + (", ".join(f"{f:g} -> {s}" for f, s in cfg["clips"]) or "none")
        + "; full success video -> 5",
        f"- RoboArena progress bins (0-100 -> 1-5, upper-exclusive edges): {cfg['options']['progress_bins']}",
        f"- videos: {video_line(cfg.get('video'))}",
        f"- LM relabeling: {'on' if cfg['relabel'] is not None else 'off'}",
        f"- episodes built: {report['episodes']['built']}; skipped (bad input, see build_report.json): "
        f"{report['episodes']['skipped']}",
        "",
        "## License",
        "",
        f"Declared as `{license.license}`"
        + (
            f" ({license.name or 'source-datasets'}): every episode keeps the license of the source dataset it "
            "comes from (the sources are listed under Build)."
            if license.license == "other"
            else "."
        )
        + (f" See {license.link}." if license.link else ""),
        "",
        "## Counts",
        "",
    ]
    for split, c in splits.items():
        lines += [
            f"### {split}: {c['examples']} examples from {c['episodes']} episodes",
            "",
            "| source | examples |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in c["by_source"].items()]
        lines += ["", "| kind | examples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in c["by_kind"].items()]
        lines += ["", "| reward | examples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in c["by_reward"].items()]
        lines.append("")
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)))
