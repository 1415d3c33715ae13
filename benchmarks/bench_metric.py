"""Metric speed: vectorised win rates vs a straightforward per-pair loop (50 models x 100,000 instances).

    python benchmarks/bench_metric.py [--models 50] [--instances 100000] [--subsets 23] [--repeats 3]

``vectorised`` is :func:`roboreward.evaluation.metrics.win_rates` (instance win rate by counting each error level per
instance, HELM subset win rate from the (M, S) per-subset MAE matrix). ``pair-loop`` loops over the M x (M-1)
ordered model pairs in Python, each comparison vectorised over instances with numpy (the usual way to write it);
``python-loop`` is the plain double loop over pairs and instances, timed on a slice and extrapolated.
``leaderboard`` is every metric for every model plus both win rates. Target (issue 4): well under 1 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_section, markdown_table  # noqa: E402

from roboreward.evaluation import metrics  # noqa: E402


def pair_loop_win_rates(errors: np.ndarray, subsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Instance and subset win rates with a Python loop over model pairs (numpy over instances)."""
    m = errors.shape[0]
    names = np.unique(subsets)
    sub_mae = np.array([[errors[a, subsets == s].mean() for s in names] for a in range(m)])
    inst = np.zeros(m)
    subw = np.zeros(m)
    for a in range(m):
        for b in range(m):
            if a == b:
                continue
            inst[a] += ((errors[a] < errors[b]) + 0.5 * (errors[a] == errors[b])).mean()
            subw[a] += ((sub_mae[a] < sub_mae[b]) + 0.5 * (sub_mae[a] == sub_mae[b])).mean()
    return inst / (m - 1), subw / (m - 1)


def python_loop_instance(errors: list[list[int]]) -> list[float]:
    m, n = len(errors), len(errors[0])
    out = []
    for a in range(m):
        total = 0.0
        for b in range(m):
            if a != b:
                ea, eb = errors[a], errors[b]
                total += sum(1.0 if ea[i] < eb[i] else 0.5 if ea[i] == eb[i] else 0.0 for i in range(n)) / n
        out.append(total / (m - 1))
    return out


def best_of(fn, repeats: int) -> tuple[float, float]:
    """Best (wall seconds, CPU seconds of this process) over ``repeats`` runs."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--instances", type=int, default=100_000)
    ap.add_argument("--subsets", type=int, default=23)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    refs = rng.integers(1, 6, args.instances)
    subsets = rng.choice([f"subset_{i:02d}" for i in range(args.subsets)], args.instances)
    clean, preds = {}, {}
    for i in range(args.models):  # models of varying quality; the object-array copy has a few parse failures
        p = np.clip(refs + rng.integers(-(i % 4), i % 4 + 1, args.instances), 1, 5)
        clean[f"model_{i:02d}"] = p
        obj = p.astype(object)
        obj[rng.random(args.instances) < 0.002] = None
        preds[f"model_{i:02d}"] = obj

    names, errors = metrics.error_matrix(preds, refs)
    t_vec = best_of(lambda: metrics.win_rates(clean, refs, subsets), args.repeats)
    t_vec_obj = best_of(lambda: metrics.win_rates(preds, refs, subsets), 1)
    t_core = best_of(lambda: metrics.instance_win_rates_from_errors(errors), args.repeats)
    t_pair = best_of(lambda: pair_loop_win_rates(errors, subsets), 1)
    t_board = best_of(lambda: metrics.leaderboard(clean, refs, subsets), 1)

    # agreement of the two implementations
    inst_loop, sub_loop = pair_loop_win_rates(errors, subsets)
    wr = metrics.win_rates(preds, refs, subsets)
    diff = max(
        np.abs(np.array([wr[n]["instance_win_rate"] for n in names]) - inst_loop).max(),
        np.abs(np.array([wr[n]["subset_win_rate"] for n in names]) - sub_loop).max(),
    )
    # pure Python double loop on a slice, extrapolated linearly in instances
    k = 2000
    t_py_slice = best_of(lambda: python_loop_instance(errors[:, :k].tolist()), 1)
    t_py = (t_py_slice[0] * args.instances / k, t_py_slice[1] * args.instances / k)

    size = f"{args.models} models x {args.instances:,} instances, {args.subsets} subsets"
    rows = [
        ["vectorised win_rates (int arrays)", *t_vec],
        ["vectorised win_rates (lists with None)", *t_vec_obj],
        ["  instance win-rate core only", *t_core],
        ["pair-loop (numpy per pair)", *t_pair],
        [f"python-loop (extrapolated from {k:,})", *t_py],
        ["leaderboard (all metrics + win rates)", *t_board],
    ]
    for row in rows:
        row.append(f"{row[2] / t_vec[1]:.1f}")  # CPU time: wall time is noisy on a shared machine
    table = markdown_table(["method", "wall s", "CPU s", "x vectorised (CPU)"], rows)
    notes = (
        f"{size}. Best of {args.repeats} for the vectorised rows; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores while measuring (CPU s is this process's own time). "
        f"Max |difference| between vectorised and pair-loop win rates: {diff:.2e}. Validating object arrays "
        "(None = parse failure) costs the extra time of the second row."
    )
    if args.no_append:
        print(table)
        print(notes)
    else:
        append_section("Metric: win rates, 50 models x 100k instances (issue 4)", table, notes=notes)


if __name__ == "__main__":
    main()
