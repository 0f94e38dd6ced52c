"""Report verdicts: the plain-language comparison of steering with its random-direction control."""

from __future__ import annotations

import pytest

from vulnsteer.report.verdicts import versus_random


def ci(v: float | None, w: float = 0.1) -> list:
    return [None, None, None] if v is None else [v, v - w, v + w]


@pytest.mark.parametrize("steered, expected", [
    (ci(0.2, 0.05), "beats the random direction"),
    (ci(0.03, 0.05), "intervals overlap"),
    (ci(-0.2, 0.05), "worse than a random direction"),
    ([0.1, None, None], "cannot be compared"),
])
def test_versus_random(steered, expected):
    summary = {"deltas": {"steered": {"accuracy": steered}, "random": {"accuracy": ci(0.0, 0.05)}}}
    assert expected in versus_random(summary)[0]


@pytest.mark.parametrize(
    ("paired", "expected"),
    [([0.2, 0.1, 0.3], "above 0"), ([-0.2, -0.3, -0.1], "below 0"), ([0.0, -0.1, 0.1], "includes 0")],
)
def test_versus_random_prefers_the_paired_interval(paired, expected):
    summary = {"deltas": {"steered": {"accuracy": [0.1, 0.0, 0.2]}, "random": {"accuracy": [0.0, -0.1, 0.1]}},
               "steered_minus_random": {"accuracy": paired, "auroc": paired}}
    lines = versus_random(summary)
    assert "(paired)" in lines[0] and expected in lines[0]


def test_probe_conclusion_judges_against_the_control_over_all_layers():
    from vulnsteer.report.verdicts import probe_conclusion

    curve = {"layers": [0, 1, 2], "auroc": [0.55, 0.673, 0.6], "control_auroc_mean": [0.5, 0.548, 0.5],
             "control_auroc_max": [0.693, 0.6, 0.55]}
    text = probe_conclusion(curve)
    assert "0.673 at layer 1" in text and "reaches 0.693" in text and "not clearly above chance" in text
    curve["control_auroc_max"] = [0.58, 0.6, 0.55]
    assert "a linear signal about the label is present" in probe_conclusion(curve)
