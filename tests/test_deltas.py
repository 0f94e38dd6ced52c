"""Paired deltas and means: the minimal detectable effect against a hand computation of the bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vulnsteer.errors import DataError
from vulnsteer.evaluation.deltas import mean_ci, minimal_detectable_effect, paired_delta_ci

# Four scenario groups, one vulnerable/patched pair each. The base condition says "yes" to everything
# (accuracy 1/2 in every group); the new one gets both files of groups g0 and g1 right, of g2 and g3 one.
LABELS = [1, 0] * 4
GROUPS = ["g0", "g0", "g1", "g1", "g2", "g2", "g3", "g3"]
PAIRS = GROUPS
BASE = ["yes"] * 8
NEW = ["yes", "no", "yes", "no", "yes", "yes", "yes", "yes"]
SCORES = [1.0] * 8


def test_mde_is_z_sum_times_standard_error():
    # z(0.975) = 1.959964, z(0.8) = 0.841621 (normal tables)
    assert minimal_detectable_effect(0.1) == pytest.approx(0.2801585, abs=1e-6)
    assert minimal_detectable_effect(0.1, alpha=0.10, power=0.9) == pytest.approx((1.644854 + 1.281552) * 0.1, abs=1e-6)
    assert math.isnan(minimal_detectable_effect(float("nan")))


def test_mde_from_a_hand_computed_group_bootstrap():
    n_boot, seed = 50, 3
    d = paired_delta_ci(LABELS, SCORES, BASE, SCORES, NEW, PAIRS, GROUPS, n_boot=n_boot, seed=seed)
    # By hand: a resample draws each group c_g times; per group the accuracy gain is 1/2 (g0, g1) or 0 (g2, g3)
    # over 2 files, so the resample's accuracy difference is sum(c_g * gain_g) / sum(c_g * 2).
    counts = np.random.default_rng(seed).multinomial(4, [0.25] * 4, size=n_boot)  # groups in sorted order
    gain = np.array([1.0, 1.0, 0.0, 0.0])  # files gained per group
    diffs = counts @ gain / (counts.sum(axis=1) * 2)
    se = np.std(diffs, ddof=1)
    assert d["accuracy"].value == pytest.approx(0.25)
    assert d["accuracy"].se == pytest.approx(se)
    assert d["accuracy"].mde == pytest.approx(2.8015853 * se, rel=1e-6)
    assert (d["accuracy"].low, d["accuracy"].high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))
    # P-C (both files of a pair right): 0 -> 1/2; per resample the share of drawn pairs from g0 or g1
    pc = counts @ np.array([1.0, 1.0, 0.0, 0.0]) / counts.sum(axis=1)
    assert d["pairs_both_right"].mde == pytest.approx(2.8015853 * np.std(pc, ddof=1), rel=1e-6)
    assert d["accuracy"].stored() == [d["accuracy"].value, d["accuracy"].low, d["accuracy"].high, d["accuracy"].mde]


def test_a_constant_difference_has_no_spread_and_an_undefined_metric_no_mde():
    no_scores = [float("nan")] * 8  # verdicts only (a parsed generation): AUROC undefined on every resample
    d = paired_delta_ci(LABELS, no_scores, BASE, no_scores, BASE, PAIRS, GROUPS, n_boot=100)
    assert d["accuracy"].se == 0 and d["accuracy"].mde == 0
    assert math.isnan(d["auroc"].value) and math.isnan(d["auroc"].se) and math.isnan(d["auroc"].mde)


def test_mde_shrinks_with_more_groups():
    def mde(n_groups: int) -> float:
        rng = np.random.default_rng(0)
        labels = [1, 0] * n_groups
        groups = [f"g{i // 2}" for i in range(2 * n_groups)]
        new = [("yes" if y else "no") if rng.random() < 0.6 else ("no" if y else "yes") for y in labels]
        d = paired_delta_ci(labels, [0.0] * len(labels), ["yes"] * len(labels), [0.0] * len(labels), new, groups,
                            groups, n_boot=400)
        return d["accuracy"].mde

    assert mde(100) < 0.6 * mde(12)


def test_mean_ci_by_hand():
    values, groups = [1.0, 0.0, 1.0, 1.0, float("nan")], ["a", "a", "b", "c", "c"]
    m = mean_ci(values, groups, n_boot=30, seed=1)
    counts = np.random.default_rng(1).multinomial(3, [1 / 3] * 3, size=30)  # groups a, b, c
    boot = (counts @ np.array([1.0, 1.0, 1.0])) / (counts @ np.array([2.0, 1.0, 1.0]))
    assert m.value == pytest.approx(0.75)
    assert (m.low, m.high) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))
    assert math.isnan(mean_ci([], [], n_boot=10).value)
    with pytest.raises(DataError, match="one group per value"):
        mean_ci([1.0, 2.0], ["a"])
