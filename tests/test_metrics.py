from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vulnsteer.errors import DataError
from vulnsteer.evaluation.deltas import paired_delta_ci
from vulnsteer.evaluation.metrics import (
    METRICS,
    _weighted_auroc,
    bootstrap_ci,
    detection_metrics,
    percentile_interval,
)

# Six files: pairs a and b complete, c has lost its twin, the last file is unpaired.
LABELS = [1, 0, 1, 0, 1, 0]
SCORES = [0.9, 0.1, 0.5, 0.5, 0.2, 0.3]
VERDICTS = ["yes", "no", "unknown", "yes", "no", "no"]
PAIRS = ["a", "a", "b", "b", "c", None]


def test_hand_computed_metrics():
    m = detection_metrics(LABELS, SCORES, VERDICTS, PAIRS)
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(3 / 6)  # right: 0, 1, 5; the 'unknown' counts wrong
    assert m["tpr"] == pytest.approx(1 / 3)
    assert m["tnr"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))  # TP 1, FP 1, FN 2 (the unknown is a miss)
    # positives 0.9, 0.5, 0.2 vs negatives 0.1, 0.5, 0.3: 3 + (2 + tie 0.5) + 1 of 9 comparisons
    assert m["auroc"] == pytest.approx(6.5 / 9)
    assert m["pairs_both_right"] == pytest.approx(0.5)  # a both right, b not; c incomplete
    assert m["pair_ranking"] == pytest.approx((1 + 0.5) / 2)  # b is a tie
    assert m["unknown_rate"] == pytest.approx(1 / 6)
    assert m["yes_rate"] == pytest.approx(2 / 6)
    assert set(m) == set(METRICS)


def test_undefined_metrics_are_nan():
    one_class = detection_metrics([1, 1], [0.2, 0.4], ["yes", "no"])
    assert math.isnan(one_class["auroc"]) and math.isnan(one_class["tnr"])
    assert math.isnan(one_class["pairs_both_right"]) and math.isnan(one_class["pair_ranking"])
    no_scores = detection_metrics(LABELS, [math.nan] * 6, VERDICTS, PAIRS)
    assert math.isnan(no_scores["auroc"]) and math.isnan(no_scores["pair_ranking"])
    assert no_scores["pairs_both_right"] == pytest.approx(0.5)  # verdict metrics do not need scores
    only_incomplete = detection_metrics([1, 0], [0.9, 0.1], ["yes", "no"], ["a", "b"])
    assert math.isnan(only_incomplete["pair_ranking"])


@pytest.mark.parametrize(
    "labels, verdicts, pairs",
    [
        ([1, 0, 2], ["yes", "no", "no"], None),
        ([1, 0, 1], ["yes", "maybe", "no"], None),
        ([1, 0], ["yes", "no", "no"], None),
        ([1, 1, 0], ["yes", "no", "no"], ["a", "a", None]),  # two vulnerable files in one pair
        ([1, 0, 0], ["yes", "no", "no"], ["a", "a", "a"]),
    ],
)
def test_bad_input_raises(labels, verdicts, pairs):
    with pytest.raises(DataError):
        detection_metrics(labels, [0.0] * len(labels), verdicts, pairs)


def test_weighted_auroc_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.random(50) < 0.4
    s = np.round(rng.normal(size=50), 1)  # rounding makes ties
    w = rng.integers(0, 4, size=(6, 50)).astype(float)
    expected = [roc_auc_score(y, s, sample_weight=row) for row in w]
    np.testing.assert_allclose(_weighted_auroc(y, s, w), expected)
    assert detection_metrics(y.astype(int), s, ["no"] * 50)["auroc"] == pytest.approx(roc_auc_score(y, s))


def _synthetic(n_pairs: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.tile([1, 0], n_pairs)
    scores = rng.normal(size=2 * n_pairs) + labels
    verdicts = np.where(scores > 0.5, "yes", "no").astype(object)
    verdicts[rng.random(2 * n_pairs) < 0.05] = "unknown"
    pairs = [f"p{i // 2}" for i in range(2 * n_pairs)]
    groups = [f"g{i // 4}" for i in range(2 * n_pairs)]  # two pairs per scenario group
    return labels, scores, verdicts, pairs, groups


def test_bootstrap_contains_point_and_shrinks_with_data():
    small, large = _synthetic(50, 0), _synthetic(800, 0)
    widths = {}
    for name, data in (("small", small), ("large", large)):
        point = detection_metrics(*data[:4])
        ci = bootstrap_ci(*data, n_boot=500, seed=0)
        for k in METRICS:
            assert ci[k][0] <= point[k] <= ci[k][1], (name, k)
        widths[name] = {k: ci[k][1] - ci[k][0] for k in METRICS if k != "n"}
    for k in widths["small"]:
        assert widths["large"][k] < 0.6 * widths["small"][k], k  # 16x the data: about 1/4 the width


def test_resampling_keeps_pairs_together():
    # Every pair says 'yes' to both files: per pair exactly one of two is right. Resampling whole pairs keeps
    # accuracy at exactly 1/2 in every resample; resampling files would not.
    n = 40
    labels = np.tile([1, 0], n)
    verdicts = ["yes"] * (2 * n)
    pairs = [f"p{i // 2}" for i in range(2 * n)]
    ci = bootstrap_ci(labels, np.zeros(2 * n), verdicts, pairs, pairs, n_boot=300)
    assert ci["accuracy"] == (0.5, 0.5)
    assert ci["tpr"] == (1.0, 1.0) and ci["tnr"] == (0.0, 0.0)
    files = [str(i) for i in range(2 * n)]
    with pytest.raises(DataError, match="different groups"):
        bootstrap_ci(labels, np.zeros(2 * n), verdicts, pairs, files)


def test_cluster_bootstrap_widens_for_correlated_groups():
    # 20 groups of 10 files, each group entirely right or entirely wrong: the effective sample size is 20.
    rng = np.random.default_rng(3)
    right = np.repeat(rng.random(20) < 0.5, 10)
    labels = np.tile([1, 0], 100)
    verdicts = np.where(right == (labels == 1), "yes", "no")
    grouped = bootstrap_ci(labels, np.zeros(200), verdicts, None, [str(i // 10) for i in range(200)])
    naive = bootstrap_ci(labels, np.zeros(200), verdicts, None, [str(i) for i in range(200)])
    width = lambda ci: ci["accuracy"][1] - ci["accuracy"][0]  # noqa: E731
    assert width(grouped) > 2 * width(naive)


def test_bootstrap_is_seeded():
    data = _synthetic(30, 1)
    assert bootstrap_ci(*data, seed=5) == bootstrap_ci(*data, seed=5)
    assert bootstrap_ci(*data, seed=5) != bootstrap_ci(*data, seed=6)


def test_bootstrap_is_fast():
    data = _synthetic(200, 2)  # 400 files
    start = time.perf_counter()
    bootstrap_ci(*data, n_boot=1000)
    assert time.perf_counter() - start < 1.0


def test_paired_delta():
    labels, scores, verdicts, pairs, groups = _synthetic(100, 4)
    same = paired_delta_ci(labels, scores, verdicts, scores, verdicts, pairs, groups, n_boot=300)
    assert all(v.value == 0 and v.low == 0 and v.high == 0 for v in same.values())
    assert "n" not in same
    # Steering that fixes 10 wrong vulnerable files: +10/200 accuracy, interval of the difference excludes 0.
    new = verdicts.copy()
    fix = np.flatnonzero((labels == 1) & (verdicts != "yes"))[:10]
    new[fix] = "yes"
    delta = paired_delta_ci(labels, scores, verdicts, scores, new, pairs, groups, n_boot=500)
    assert delta["accuracy"].value == pytest.approx(10 / 200)
    assert 0 < delta["accuracy"].low <= 10 / 200 <= delta["accuracy"].high
    # Unpaired intervals of the two conditions overlap; the paired interval is far narrower.
    a = bootstrap_ci(labels, scores, verdicts, pairs, groups, n_boot=500)["accuracy"]
    b = bootstrap_ci(labels, scores, new, pairs, groups, n_boot=500)["accuracy"]
    assert b[0] < a[1]
    assert delta["accuracy"].high - delta["accuracy"].low < 0.5 * (a[1] - a[0])


def test_an_interval_with_its_point_at_an_end_is_bias_corrected():
    # a lumpy bootstrap: a fifth of the resamples tie with the point, the rest lie above it
    draws = np.r_[np.full(200, 0.61), np.linspace(0.62, 0.78, 800)]
    assert percentile_interval(draws, 0.05)[0] == 0.61  # the percentile interval: "0.61 [0.61, 0.78]"
    lo, hi = percentile_interval(draws, 0.05, point=0.61)
    assert lo == 0.61 < hi < 0.78  # BC: the point's share below (ties half) pulls the upper end down


def test_too_few_groups_give_no_interval():
    labels, scores = [1, 0] * 4, [1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0]
    verdicts = ["yes" if s > 0 else "no" for s in scores]
    four = bootstrap_ci(labels, scores, verdicts, None, ["a", "a", "b", "b", "c", "c", "d", "d"], 200, 0)
    assert all(math.isnan(lo) and math.isnan(hi) for lo, hi in four.values())
    five = bootstrap_ci(labels, scores, verdicts, None, ["a", "a", "b", "b", "c", "c", "d", "e"], 200, 0)
    assert not math.isnan(five["accuracy"][0])


def test_the_auroc_fast_path_equals_scikit_learn_bit_for_bit():
    """metrics._roc_auc replaces roc_auc_score in the search's hot loop: it must give the very same float, or a
    tie between two configurations could break the other way."""
    from sklearn.metrics import roc_auc_score

    from vulnsteer.evaluation.metrics import _roc_auc

    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(3000):
        n = int(rng.integers(2, 400))
        y = rng.integers(0, 2, n)
        if not 0 < y.sum() < n:
            continue
        s = rng.normal(size=n)
        if trial % 3 == 0:
            s = np.round(s, 1)  # many ties
        if trial % 7 == 0:
            s = rng.integers(0, 3, n).astype(float)  # nearly all tied
        if trial % 11 == 0:
            s = s.astype(np.float32).astype(float)
        assert _roc_auc(y, s) == float(roc_auc_score(y, s)), (trial, n)
        checked += 1
    assert checked > 2900
    assert _roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
