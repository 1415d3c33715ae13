"""Episode-grouped train / validation / test split, deterministic for a seed.

All examples of one group (an episode, or a RoboArena session) land in the same split. Groups are split per
source (sub-dataset) so every split sees every source when it has enough groups: within a source, groups are
ordered by id, shuffled with a seed derived from ``(seed, source)``, and cut by the fractions (largest
remainder rounding; every split with a non-zero fraction gets at least one group when there are enough).
The assignment of a source does not depend on the other sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from roboreward.dataset.reader import SPLITS

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


def parse_fractions(spec: str | Sequence[float] | None) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> (train, validation, test) fractions summing to 1."""
    if spec is None:
        return DEFAULT_FRACTIONS
    values = [float(x) for x in spec.split(",")] if isinstance(spec, str) else [float(x) for x in spec]
    if len(values) != 3 or any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"split fractions must be three non-negative numbers (train,validation,test): {spec!r}")
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {total:g}")
    return (values[0], values[1], values[2])


def allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Counts per split for ``n`` groups: largest remainder, then at least one per non-zero split if possible."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    nonzero = [i for i, f in enumerate(fractions) if f > 0]
    if n >= len(nonzero):
        for i in nonzero:
            if counts[i] == 0:
                donor = max(nonzero, key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


def assign_splits(
    groups: Iterable[tuple[str, str]], fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[str, str]:
    """Map each group id to a split name. ``groups`` yields (source, group id) pairs (duplicates are fine)."""
    from roboreward.sources import stable_seed

    by_source: dict[str, set[str]] = {}
    owner: dict[str, str] = {}
    for source, group in groups:
        if owner.setdefault(group, source) != source:
            raise ValueError(f"group {group!r} appears in two sources ({owner[group]!r}, {source!r})")
        by_source.setdefault(source, set()).add(group)
    out: dict[str, str] = {}
    for source in sorted(by_source):
        ids = sorted(by_source[source])
        rng = np.random.default_rng(stable_seed(seed, "split", source))
        perm = [ids[i] for i in rng.permutation(len(ids))]
        start = 0
        for split, count in zip(SPLITS, allocate(len(ids), fractions), strict=True):
            for g in perm[start : start + count]:
                out[g] = split
            start += count
    return out


def check_no_leakage(rows: Iterable[tuple[str, str]]) -> None:
    """Raise if any episode id appears in two splits; ``rows`` yields (split, episode id)."""
    seen: dict[str, str] = {}
    for split, episode in rows:
        if seen.setdefault(episode, split) != split:
            raise ValueError(f"episode {episode!r} is in both {seen[episode]!r} and {split!r}")
