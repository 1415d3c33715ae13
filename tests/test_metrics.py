"""Metrics: hand-computed cases (ties included), property checks against straightforward loops, and the
``evaluate`` module loaded offline from eval_metric/roboreward_metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roboreward.evaluation import metrics

METRIC_DIR = Path(__file__).resolve().parents[1] / "eval_metric" / "roboreward_metric"


def test_single_model_hand_computed():
    preds = [5, 3, None, 1, 4, 2]
    refs = [5, 4, 1, 1, 2, 2]
    subsets = ["bridge", "bridge", "droid", "droid", "droid", "viola"]
    r = metrics.compute(preds, refs, subsets)
    # errors 0, 1, 4 (parse failure), 0, 2, 0
    assert r["mae"] == pytest.approx(7 / 6)
    assert r["accuracy"] == pytest.approx(3 / 6)
    assert r["off_by_one_accuracy"] == pytest.approx(4 / 6)
    assert r["parse_failures"] == 1 and r["n"] == 6
    assert r["per_subset_mae"] == pytest.approx({"bridge": 0.5, "droid": 2.0, "viola": 0.0})
    assert r["macro_mae"] == pytest.approx((0.5 + 2.0 + 0.0) / 3)
    cm = np.array(r["confusion_matrix"])
    assert cm.sum() == 5 and cm[4, 4] == 1 and cm[3, 2] == 1 and cm[0, 0] == 1 and cm[1, 3] == 1 and cm[1, 1] == 1
    # Spearman over parsed pairs (5,5) (3,4) (1,1) (4,2) (2,2), checked against scipy
    from scipy.stats import spearmanr

    assert r["spearman"] == pytest.approx(spearmanr([5, 3, 1, 4, 2], [5, 4, 1, 2, 2]).statistic)
    assert metrics.mae(preds, refs) == pytest.approx(7 / 6)
    assert metrics.macro_mae(preds, refs, subsets) == pytest.approx(2.5 / 3)


def test_spearman_undefined_is_zero():
    assert metrics.spearman([3, 3, 3], [1, 2, 3]) == 0.0
    assert metrics.spearman([1], [2]) == 0.0
    assert metrics.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_win_rates_hand_computed_with_ties():
    refs = [5, 4, 1, 3]
    models = {
        "A": [5, 4, 2, 3],  # errors 0 0 1 0
        "B": [5, 3, 1, 1],  # errors 0 1 0 2
        "C": [5, 4, 1, None],  # errors 0 0 0 4
    }
    wr = metrics.win_rates(models, refs)
    # A vs B: tie, win, lose, win -> 2.5/4; A vs C: tie, tie, lose, win -> 2/4
    assert wr["A"]["instance_win_rate"] == pytest.approx((2.5 / 4 + 2 / 4) / 2)
    # B vs A: 1.5/4; B vs C: tie, lose, tie, win -> 2/4
    assert wr["B"]["instance_win_rate"] == pytest.approx((1.5 / 4 + 2 / 4) / 2)
    # C vs A: 2/4; C vs B: 2/4
    assert wr["C"]["instance_win_rate"] == pytest.approx(0.5)
    # one subset: MAE A 0.25, B 0.75, C 1.0
    assert [wr[m]["subset_win_rate"] for m in "ABC"] == pytest.approx([1.0, 0.5, 0.0])


def test_subset_win_rate_helm_style_ties_half():
    refs = [1, 1, 1, 1]
    subsets = ["s1", "s1", "s2", "s2"]
    models = {"A": [1, 2, 1, 1], "B": [2, 1, 1, 2], "C": [1, 1, 2, 2]}
    # s1 MAE: A .5 B .5 C 0 ; s2 MAE: A 0 B .5 C 1
    wr = metrics.win_rates(models, refs, subsets)
    # s1: A beats none, ties B -> 0.5/2; s2: A beats B, C -> 2/2
    assert wr["A"]["subset_win_rate"] == pytest.approx((0.25 + 1.0) / 2)
    assert wr["B"]["subset_win_rate"] == pytest.approx((0.25 + 0.5) / 2)
    assert wr["C"]["subset_win_rate"] == pytest.approx((1.0 + 0.0) / 2)
    total = sum(v["subset_win_rate"] for v in wr.values())
    assert total == pytest.approx(1.5)  # win rates of M models always sum to M/2
    board = metrics.leaderboard(models, refs, subsets)
    assert [r["model"] for r in board] == ["A", "B", "C"]  # macro MAE .25, .5, .5; B and C tie on MAE too: by name
    assert [r["macro_mae"] for r in board] == pytest.approx([0.25, 0.5, 0.5])


def _loop_instance_win_rate(errors: np.ndarray) -> np.ndarray:
    m, n = errors.shape
    out = np.zeros(m)
    for a in range(m):
        total = 0.0
        for b in range(m):
            if a != b:
                total += sum((errors[a, i] < errors[b, i]) + 0.5 * (errors[a, i] == errors[b, i]) for i in range(n)) / n
        out[a] = total / (m - 1)
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda m: st.integers(1, 12).flatmap(
            lambda n: st.tuples(
                st.lists(
                    st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=n, max_size=n), min_size=m, max_size=m
                ),
                st.lists(st.integers(1, 5), min_size=n, max_size=n),
                st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
            )
        )
    )
)
def test_vectorised_win_rates_match_loops(case):
    preds, refs, subsets = case
    models = {f"m{i}": p for i, p in enumerate(preds)}
    names, errors = metrics.error_matrix(models, refs)
    np.testing.assert_allclose(metrics.instance_win_rates_from_errors(errors), _loop_instance_win_rate(errors))
    wr = metrics.win_rates(models, refs, subsets)
    per = [metrics.per_subset_mae(p, refs, subsets) for p in preds]
    for a, name in enumerate(names):
        rates = []
        for s in per[a]:
            rates.append(
                sum((per[a][s] < per[b][s]) + 0.5 * (per[a][s] == per[b][s]) for b in range(len(preds)) if b != a)
            )
        assert wr[name]["subset_win_rate"] == pytest.approx(np.mean(rates) / (len(preds) - 1))
    assert sum(v["instance_win_rate"] for v in wr.values()) == pytest.approx(len(preds) / 2)


@pytest.mark.parametrize(
    ("preds", "refs", "match"),
    [
        ([1, 6], [1, 2], r"predictions\[1\] = 6 is outside 1..5"),
        ([0, 2], [1, 2], r"predictions\[0\] = 0 is outside"),
        ([1, float("nan")], [1, 2], r"predictions\[1\] = nan is NaN or infinite"),
        ([1, float("inf")], [1, 2], r"predictions\[1\] = inf is NaN or infinite"),
        ([1, 2.5], [1, 2], r"predictions\[1\] = 2.5 is not an integer"),
        ([1, "x"], [1, 2], r"predictions\[1\] = 'x' is not a number"),
        ([1, "5"], [1, 2], r"predictions\[1\] = '5' is not a number"),  # strict: no string that converts
        ([b"5", 2], [1, 2], r"predictions\[0\] = b'5' is not a number"),
        ([1, True], [1, 2], r"predictions\[1\] = True is not a number"),
        ([5 + 3j, 2], [1, 2], r"predictions\[0\] = \(5\+3j\) is not a number"),
        (np.array([True, False]), [1, 2], r"predictions must hold numbers in 1..5 \(dtype bool\)"),
        (np.array(["5", "4"]), [1, 2], r"predictions must hold numbers in 1..5 \(dtype <U1\)"),
        ([1, 2], [1, "2"], r"references\[1\] = '2' is not a number"),
        ([1, 2, 3], [1, 2], "3 predictions but 2 references"),
        ([1, 2], [1, None], r"references\[1\] is None"),
        ([1, 2], [1, 9], r"references\[1\] = 9 is outside"),
        ([], [], "no predictions"),
    ],
)
def test_bad_inputs_raise_clear_errors(preds, refs, match):
    with pytest.raises(ValueError, match=match):
        metrics.compute(preds, refs)


def test_win_rate_errors():
    with pytest.raises(ValueError, match="at least 2 models, got 1"):
        metrics.win_rates({"only": [1, 2]}, [1, 2])
    with pytest.raises(ValueError, match="model 'b': 1 predictions but 2 references"):
        metrics.win_rates({"a": [1, 2], "b": [1]}, [1, 2])
    with pytest.raises(ValueError, match="3 subsets but 2 predictions"):
        metrics.compute([1, 2], [1, 2], ["a", "b", "c"])


def test_numpy_inputs_and_large_arrays_fast():
    import time

    rng = np.random.default_rng(0)
    refs = rng.integers(1, 6, 100_000)
    models = {f"m{i}": rng.integers(1, 6, 100_000) for i in range(50)}
    subsets = rng.choice([f"s{i}" for i in range(23)], 100_000)
    t = time.perf_counter()
    wr = metrics.win_rates(models, refs, subsets)
    elapsed = time.perf_counter() - t
    assert len(wr) == 50 and elapsed < 10  # ~0.3 s on one core; generous bound for a loaded CI machine


def test_evaluate_module_offline():
    import evaluate

    metric = evaluate.load(str(METRIC_DIR))
    r = metric.compute(predictions=[5, 3, None], references=[5, 4, 1], subsets=["bridge", "bridge", "droid"])
    assert r["mae"] == pytest.approx(5 / 3) and r["macro_mae"] == pytest.approx(2.25) and r["parse_failures"] == 1
    r = metric.compute(predictions=[5, 3, 1], references=[5, 4, 1], model_predictions={"B": [4, 4, 1]}, model_name="A")
    assert r["instance_win_rate"] == pytest.approx(0.5) and set(r["win_rates"]) == {"A", "B"}
    metric.add_batch(predictions=[1, 2], references=[1, 3])
    metric.add_batch(predictions=[5], references=[5])
    assert metric.compute()["mae"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="outside 1..5"):
        metric.compute(predictions=[5, 7], references=[5, 4])
    with pytest.raises(ValueError, match="NaN"):
        metric.compute(predictions=[5, float("nan")], references=[5, 4])
    with pytest.raises(ValueError, match="at least 2 models"):
        metric.compute(predictions=[5, 4], references=[5, 4], model_predictions={})


def test_evaluate_module_ships_in_the_wheel_and_loads_from_any_folder(tmp_path):
    """A wheel built from the package holds the module folder; installed (unpacked) from it, ``evaluate.load`` by
    the installed path works with another working folder (offline)."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(repo / "pyproject.toml", src)
    shutil.copy(repo / "README.md", src)
    shutil.copytree(repo / "roboreward", src / "roboreward", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("roboreward-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = "roboreward/evaluation/hf_metric/roboreward_metric/"
    assert {folder + f for f in ("roboreward_metric.py", "README.md", "app.py", "requirements.txt")} <= names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import evaluate, roboreward\n"
        "from roboreward.evaluation.hf_metric import metric_path\n"
        f"assert roboreward.__file__.startswith({str(site)!r}), roboreward.__file__\n"
        "r = evaluate.load(metric_path()).compute(predictions=[5, 3, None], references=[5, 4, 1])\n"
        "print(round(r['mae'], 4), r['parse_failures'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["1.6667", "1"]


@pytest.mark.parametrize("folder", ["package", "entry point"])
def test_evaluate_module_folder_is_a_space(folder, monkeypatch):
    """README header with ``sdk: gradio`` / ``app_file``; ``app.py`` serves the widget, whose table computes the
    metric (a blank prediction is a parse failure)."""
    import runpy

    import gradio as gr
    from huggingface_hub import SpaceCard

    from roboreward.evaluation.hf_metric import METRIC_DIR as PACKAGED

    path = PACKAGED if folder == "package" else METRIC_DIR
    card = SpaceCard.load(path / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and (path / card.data.app_file).is_file()
    assert (
        "gradio" in (path / "requirements.txt").read_text() and "roboreward" in (path / "requirements.txt").read_text()
    )
    launched = []
    monkeypatch.setattr(gr.Interface, "launch", lambda self, **kw: launched.append(self))
    runpy.run_path(str(path / card.data.app_file), run_name="__main__")
    (iface,) = launched
    r = iface.fn([[5, 5, "bridge"], [3, 4, "bridge"], [None, 1, "droid"], ["", "", ""]])
    assert r["mae"] == pytest.approx(5 / 3) and r["parse_failures"] == 1 and r["macro_mae"] == pytest.approx(2.25)
    with pytest.raises(gr.Error, match="row 1"):
        iface.fn([["five", 5, "bridge"]])
    assert iface.article.lstrip().startswith("# ")  # the card below the widget, without its YAML header
