"""Which link failed when steering does not beat its random control: probe, condition, or the vector's effect."""

from __future__ import annotations

import pytest

from vulnsteer.report.links import failed_links


def _slope(fold, slope, op="add", chosen=True, vuln=None, secure=None):
    return dict(fold=fold, layer=3, method="caa", operator=op, chosen=chosen, alpha_min=-32.0, alpha_max=32.0,
                slope=slope, slope_vulnerable=slope if vuln is None else vuln,
                slope_secure=slope if secure is None else secure, span=slope * 64)


def _summary(vs_random=(0.0, -0.1, 0.1, 0.12), probe_auroc=0.97, selects=None, slopes=(0.05, 0.06, 0.001)):
    out = {"steered_minus_random": {"balanced_accuracy": list(vs_random)},
           "conditions": {"probe": {"all": {"auroc": [probe_auroc, probe_auroc - 0.05, 1.0]}}},
           "deltas": {"conditional": {"balanced_accuracy": [0.0, -0.1, 0.1, 0.12]}},
           "strength_slopes": [_slope(f, s) for f, s in enumerate(slopes)]}
    if selects is not None:
        out["condition_selects"] = {"vulnerable": selects[0], "secure": selects[1]}
    return out


def test_no_diagnosis_when_steering_beats_the_random_direction():
    assert failed_links(_summary(vs_random=(0.2, 0.05, 0.3, 0.1))) == []
    assert failed_links({"conditions": {}}) == []  # no paired interval: nothing to diagnose


@pytest.mark.parametrize(("kwargs", "first"), [
    (dict(probe_auroc=0.7), "First failing link: the probe."),
    (dict(selects=(0.5, 0.4)), "First failing link: the condition."),
    (dict(slopes=(0.001, -0.002, 0.05)), "First failing link: the vector's effect on the yes/no score."),
    (dict(probe_auroc=0.6, slopes=(0.0, 0.0, 0.0)), "First failing link: the probe (also: the vector's effect "
                                                    "on the yes/no score)."),
])
def test_names_the_first_link_that_failed(kwargs, first):
    text = failed_links(_summary(**kwargs))
    assert text[0] == "Steered minus random, balanced accuracy 0.00 [-0.10, 0.10] MDE 0.12, does not lie above 0. " \
                      "Which link failed:"
    assert text[-1] == first


def test_each_link_is_reported_with_its_numbers():
    text = " ".join(failed_links(_summary(selects=(1.0, 0.0))))
    assert "(a) the probe: held-out AUROC 0.97 [0.92, 1.00] (at or above 0.9): the residuals hold the signal" in text
    assert "(b) the condition: it selected 1.00 of the held-out vulnerable files and 0.00 of the secure ones " \
           "(gap 1.00" in text
    # median over 3 folds of 0.05, 0.06, 0.001; 64 units of strength swept; 2 of 3 folds move the score by >= 1
    assert "changes by +0.05 per unit of strength (median over 3 fold(s)" in text
    assert "+3.2 over the swept strengths -32..32; it moves by at least 1 in 2 of 3 fold(s): the vector moves " \
           "the answer." in text
    assert text.endswith("a move of the same size on both shifts the yes/no bias without separating the files.")


def test_amplify_slopes_and_a_summary_that_predates_them():
    s = _summary()
    s["strength_slopes"] += [_slope(0, 0.0001, op="amplify", chosen=False, vuln=0.0002, secure=0.0)]
    text = " ".join(failed_links(s))
    assert "Amplify at the same layer and method: the yes/no score changes by +0.0001 per unit" in text
    assert "barely moves the answer" in text
    del s["strength_slopes"]
    assert "(c) the vector's effect: not recorded" in " ".join(failed_links(s))


def test_a_gap_of_exactly_the_threshold_separates_and_a_condition_that_helps_holds():
    from vulnsteer.report.links import _condition

    shares = {"vulnerable": 7 / 24, "secure": 19 / 24}  # a gap of 0.5 that floating point makes 0.4999...
    holds, text = _condition({"condition_selects": shares, "deltas": {}})
    assert holds and "the condition separates the labels" in text
    small = {"vulnerable": 0.4, "secure": 0.6}
    assert not _condition({"condition_selects": small, "deltas": {}})[0]
    helps = {"condition_selects": small, "deltas": {"conditional": {"balanced_accuracy": [0.19, 0.10, 0.29, 0.13]}}}
    holds, text = _condition(helps)
    assert holds and "conditional steering helps" in text
