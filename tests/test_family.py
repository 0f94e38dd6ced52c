"""The paired comparisons table and its multiplicity marks (Holm over the comparisons the verdict draws on)."""

from __future__ import annotations

from test_tables import steer_summary
from vulnsteer.report.family import comparisons_data
from vulnsteer.report.tables import PC_LABEL


def test_comparisons_say_what_a_null_result_rules_out():
    summary = steer_summary()
    summary["steered_minus_random"] = {"accuracy": [0.2, 0.1, 0.3, 0.09], "auroc": [0.0, -0.1, 0.1, 0.15]}
    rows = {(r[0], r[1]): r for r in comparisons_data(summary).rows}
    steered = rows[("steered (chosen on validation) − baseline", "accuracy")]
    # what the data rule out is the interval's far end; the MDE (its own column) is the design's
    assert steered[2:5] == ["0.04 [-0.01, 0.09]", "0.07", "the interval rules out changes below -0.01 or above 0.09"]
    paired = ("steered − random-direction control (paired)", "AUROC")
    assert rows[paired][2:5] == ["0.00 [-0.10, 0.10]", "0.15", "the interval rules out changes below -0.10 or above 0.10"]
    assert rows[(paired[0], "accuracy")][4] == "the interval excludes 0"
    assert rows[(paired[0], PC_LABEL)][4] == "n/a"  # not stored: no reading rather than a guess
    assert not any("no effect larger than" in r[4] for r in rows.values())


def test_the_comparisons_count_and_mark_which_survive_holm():
    summary = steer_summary()
    # a family of three (the fixture's deltas store no balanced accuracy and NaN AUROC): accuracy far from 0
    # (z 10), AUROC excluding 0 but only just (z 2, p 0.046 > 0.05 / 2 at Holm's second step), balanced acc. 0
    summary["steered_minus_random"] = {"accuracy": [0.5, 0.4, 0.6, 0.14], "auroc": [0.1, 0.01, 0.2, 0.14],
                                       "balanced_accuracy": [0.0, -0.1, 0.1, 0.14]}
    data = comparisons_data(summary)
    holm = {(r[0], r[1]): r[5] for r in data.rows}
    assert holm[("steered − random-direction control (paired)", "accuracy")] == "survives"
    assert holm[("steered − random-direction control (paired)", "AUROC")] == "does not"
    assert holm[("random-direction control − baseline", "accuracy")] == "—"  # not one the verdict draws on
    assert data.columns[5] == "Holm, 3 verdict comparisons" and "Holm correction" in data.note
