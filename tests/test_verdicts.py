"""Report verdicts: the plain-language comparison of steering with its random-direction control."""

from __future__ import annotations

import pytest

from vulnsteer.report.verdicts import CARRY_QUESTION, carries_signal, versus_random


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


def _carry_summary(conditional_delta: list, vs_random: list) -> dict:
    bacc = {"probe": [0.7, 0.6, 0.8], "baseline": [0.5, 0.5, 0.5], "conditional": [0.65, 0.55, 0.75],
            "amplify": [0.5, 0.5, 0.5]}
    return {"conditions": {c: {"all": {"balanced_accuracy": v}} for c, v in bacc.items()},
            "deltas": {"conditional": {"balanced_accuracy": conditional_delta},
                       "amplify": {"balanced_accuracy": [0.0, -0.1, 0.1, 0.12]}},
            "conditional_minus_random": {"balanced_accuracy": vs_random}}


@pytest.mark.parametrize(("delta", "vs_random", "expected"), [
    ([0.15, 0.05, 0.25, 0.1], [0.1, 0.02, 0.2, 0.1], "conditional steering carries the probe's signal into the answer"),
    ([0.15, 0.05, 0.25, 0.1], [0.0, -0.1, 0.1, 0.1], "no more than a random direction on the same files"),
    ([0.02, -0.05, 0.1, 0.13], [0.0, -0.1, 0.1, 0.1], "is not shown to carry the probe's signal into the answer "
                                                       "(conditional minus unsteered: the interval rules out changes "
                                                       "below -0.05 or above 0.10; this design detects 0.13 with 80% "
                                                       "power)"),
])
def test_carries_signal_answers_from_the_intervals(delta, vs_random, expected):
    text = " ".join(carries_signal(_carry_summary(delta, vs_random), None))
    assert text.startswith(CARRY_QUESTION) and expected in text
    assert "the probe alone 0.70 [0.60, 0.80]; the model's answer unsteered 0.50 [0.50, 0.50]" in text
    assert ("The probe leads the unsteered answer by 0.20 in balanced accuracy; the conditional answer moves +0.15 "
            "from the unsteered one: about 75% of that gap") in text
    assert ("amplifying the direction is not shown to make the answer follow the projection (the interval rules out "
            "changes below -0.10 or above 0.10; this design detects 0.12 with 80% power)") in text
    assert "no effect larger than" not in text
    assert "no conditionally steered generations" in text


def test_carries_signal_counts_what_steering_did_to_the_selected_explanations():
    gens = [dict(label=1, unsteered="a", unsteered_verdict="no", conditional="b", conditional_verdict="yes",
                 conditional_selected=True),
            dict(label=0, unsteered="c", unsteered_verdict="yes", conditional="c", conditional_verdict="yes",
                 conditional_selected=True),
            dict(label=0, unsteered="d", unsteered_verdict="yes", conditional="d", conditional_verdict="yes",
                 conditional_selected=False)]
    last = carries_signal(_carry_summary([0.0, -0.1, 0.1, 0.1], [0.0, -0.1, 0.1, 0.1]), gens)[-1]
    assert last.startswith("Generated explanation: the condition selected 2 of the 3 side-by-side files; steering "
                           "changed the text of 1 of them and the parsed verdict of 1 (1 now right); the 1 not "
                           "selected keep their unsteered text.")


def test_carries_signal_says_when_it_was_not_measured():
    assert "Not measured" in carries_signal({"conditions": {"baseline": {}}}, None)[0]


def test_a_null_says_what_the_interval_rules_out_beside_what_the_design_detects():
    # the example: 0.06 [0.00, 0.15], MDE 0.09 must not read "no effect larger than 0.09"
    text = " ".join(carries_signal(_carry_summary([0.06, 0.0, 0.15, 0.09], [0.0, -0.1, 0.1, 0.1]), None))
    assert "rules out changes below 0.00 or above 0.15; this design detects 0.09 with 80% power" in text
    assert "does not carry" not in text and "no effect larger than" not in text


def test_a_conditional_answer_below_the_unsteered_one_closes_none_of_the_gap():
    summary = _carry_summary([-0.1, -0.2, 0.0, 0.1], [0.0, -0.1, 0.1, 0.1])
    summary["conditions"]["conditional"]["all"]["balanced_accuracy"] = [0.1, 0.0, 0.2]
    text = " ".join(carries_signal(summary, None))
    assert "moves -0.40 from the unsteered one: it closes none of that gap" in text and "-200%" not in text


def test_a_claim_resting_on_one_interval_says_whether_it_survives_holm():
    summary = _carry_summary([0.15, 0.05, 0.25, 0.1], [0.1, 0.02, 0.2, 0.1])
    # Holm over 4: conditional (z 4.2) and conditional - random (z 2.8, p 0.005) clear 0.05 / 4 and 0.05 / 3;
    # amplify (z 2, p 0.046) excludes 0 but not 0.05 / 2; steered - baseline (p 1) completes the family
    summary["deltas"]["amplify"]["balanced_accuracy"] = [0.05, 0.001, 0.1, 0.07]
    summary["deltas"]["steered"] = {"balanced_accuracy": [0.0, -0.1, 0.1, 0.14]}
    text = " ".join(carries_signal(summary, None))
    assert "carries the probe's signal into the answer: it beats both the unsteered answer and a random direction " \
           "on the files the condition selected (survives a Holm correction over the 4 comparisons" in text
    assert "better than the unsteered answer (does not survive a Holm correction over the 4 comparisons the " \
           "verdict draws on: exploratory)" in text
