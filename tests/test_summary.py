"""Hand-checked summaries of steering test rows: deltas, flips, the bias-only flag, the verdict."""

from __future__ import annotations

import math

from vulnsteer.experiments.steer_results import TestRow
from vulnsteer.experiments.summary import (
    CONDITIONS,
    bias_only,
    condition_metrics,
    curves,
    deltas,
    flips,
    steered_minus_random,
    sweep_summary,
    verdict_text,
)


def _rows(steered, random=None):
    rows = []
    for i in range(8):
        label = 1 - i % 2
        rows.append(TestRow(
            index=i, id=f"s{i}", fold=0, cwe="CWE-1" if i < 4 else "CWE-2", label=label, group=f"g{i // 2}",
            pair_id=f"g{i // 2}", config="L0 caa add:1", vector_cwe="pooled", baseline=1.0 + 0.1 * i,
            steered=steered[i], opposite=-steered[i], random=tuple(random[i] if random else [0.5, 0.6]),
            kl_answer=0.0, kl_answer_random=0.0, probe=0.3 if label else -0.3, probe_layer=0,
            calibrated=0.1 if label else -0.1,
        ))
    return rows


def test_flips_count_changed_verdicts_by_label():
    # baseline says yes to all; steered says no to secure files (odd i) and to one vulnerable file (i=0)
    steered = [-1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    f = flips(_rows(steered), n_boot=200, seed=0)["steered"]
    assert f["vuln_to_secure"][0] == 0.25  # 1 of 4 vulnerable files
    assert f["vuln_to_secure"][1] <= 0.25 <= f["vuln_to_secure"][2]  # an interval over scenario groups
    assert f["secure_to_vuln"] == [0.0, 0.0, 0.0]  # baseline said yes to every secure file already


def test_bias_only_flags_accuracy_gain_without_auroc_gain():
    # steered = baseline shifted down by a constant: same ranking, verdicts rebalanced
    shifted = [1.0 + 0.1 * i - 1.35 for i in range(8)]
    d = deltas(_rows(shifted), n_boot=200, seed=0)
    assert abs(d["steered"]["auroc"][0]) < 1e-9
    flagged = bias_only(d)
    assert flagged["steered"] is (d["steered"]["accuracy"][0] > 0)
    assert set(d) == set(CONDITIONS[1:])


def test_condition_metrics_cover_every_condition_and_cwe():
    rows = _rows([1.0] * 8, random=[[0.1, -0.1, 0.2]] * 8)
    m = condition_metrics(rows, n_boot=200, seed=0)
    assert set(m) == set(CONDITIONS)
    assert set(m["steered"]) == {"CWE-1", "CWE-2", "all"}
    # three random draws per sample: the random control counts each draw once
    assert m["random"]["all"]["n"][0] == 24
    assert m["probe"]["all"]["accuracy"][0] == 1.0


def test_verdict_text_says_no_when_steering_does_not_beat_the_control():
    rows = _rows([1.0 + 0.1 * i for i in range(8)])
    conds = condition_metrics(rows, n_boot=200, seed=0)
    d = deltas(rows, n_boot=200, seed=0)
    vs = steered_minus_random(rows, n_boot=200, seed=0)
    text = verdict_text(conds, d, bias_only(d), vs)
    assert "did NOT" in text and "steered minus random" in text
    # every answer alike in both conditions: a zero-width interval says so, not "no effect larger than 0"
    assert vs["balanced_accuracy"][1:3] == [0.0, 0.0]
    assert "zero width" in text and "identical answers" in text and "no effect larger than" not in text


def test_steered_minus_random_is_paired_by_hand():
    # steered separates perfectly, random says yes to everything: accuracy difference 0.5 on every resample
    steered = [1.0 if i % 2 == 0 else -1.0 for i in range(8)]
    rows = _rows(steered, random=[[0.5, 0.7, 0.6]] * 8)
    vs = steered_minus_random(rows, n_boot=200, seed=0)
    assert vs["accuracy"] == [0.5, 0.5, 0.5, 0.0]  # the same difference on every resample: SE and MDE 0
    assert vs["auroc"][0] == 0.5  # 1.0 minus a constant score's 0.5


def test_sweep_summary_and_curves():
    sweep = []
    for layer in (0, 1):
        for alpha in (-1.0, 1.0):
            for i in range(4):
                good = layer == 1 and alpha == -1.0
                score = (1.0 if i % 2 == 0 else -1.0) if good else 1.0
                sweep.append(dict(fold=0, index=i, layer=layer, method="caa", operator="add", alpha=alpha, score=score))
    labels = [1, 0, 1, 0]
    summ = sweep_summary(sweep, labels, ["p0", "p0", "p1", "p1"])
    best = [r for r in summ if r["layer"] == 1 and r["alpha"] == -1.0][0]
    assert best["balanced_accuracy"] == 1.0 and best["auroc"] == 1.0
    c = curves(summ)
    assert c["caa/add"]["layer"] == 1 and c["caa/add"]["alphas"] == [-1.0, 1.0]
    assert c["by_layer"]["caa/add"]["alpha"] == -1.0
    assert math.isclose(c["by_layer"]["caa/add"]["balanced_accuracy"][1], 1.0)


def test_conditional_rows_add_conditions_and_their_masked_random_comparison():
    from dataclasses import replace

    from vulnsteer.experiments.summary import conditional_minus_random, conditions_of

    rows = _rows([1.0] * 8, random=[[-1.0, -2.0, 5.0]] * 8)
    assert conditions_of(rows) == CONDITIONS and conditional_minus_random(rows, 200, 0) is None
    # selected: the vulnerable files (even i), steered to yes; the others keep their (yes) baseline
    cond = [replace(r, selected=r.label == 1, conditional=r.steered if r.label == 1 else r.baseline, amplify=-1.0)
            for r in rows]
    assert conditions_of(cond) == CONDITIONS + ("amplify", "conditional")
    assert set(condition_metrics(cond, 200, 0)) == set(CONDITIONS) | {"amplify", "conditional"}
    # the masked random control, draws pooled: where selected (vulnerable) 1 of 3 draws says yes (right), the
    # unselected secure files keep their wrong yes -> accuracy 4/24; conditional accuracy 0.5
    d = conditional_minus_random(cond, 200, 0)
    assert d is not None and math.isclose(d["accuracy"][0], 0.5 - 4 / 24) and len(d["accuracy"]) == 4


def test_strength_slopes_by_hand():
    from vulnsteer.experiments.steer_results import Choice
    from vulnsteer.experiments.summary import strength_slopes
    from vulnsteer.options import Method, Operator

    def row(i, layer, op, alpha, score, fold=0):
        return dict(fold=fold, index=i, layer=layer, method="caa", operator=op, alpha=alpha, score=score)

    sweep = [row(0, 1, "add", -2.0, -1.0), row(0, 1, "add", 2.0, 3.0),  # vulnerable: slope 1
             row(1, 1, "add", -2.0, 5.0), row(1, 1, "add", 2.0, 5.0),  # secure: slope 0, own baseline 5
             row(0, 1, "amplify", 4.0, 9.0), row(1, 1, "amplify", 4.0, 0.0),  # one strength: no slope
             row(0, 2, "add", -2.0, 100.0), row(0, 2, "add", 2.0, -100.0),  # another layer: not chosen
             row(0, 1, "add", -2.0, 100.0, fold=1), row(0, 1, "add", 2.0, -100.0, fold=1)]  # another fold
    out = strength_slopes(sweep, [Choice(0, 1, Method.CAA, Operator.ADD, 2.0, {})], labels=[1, 0])
    add, amp = sorted(out, key=lambda r: r["operator"])
    assert (add["slope"], add["slope_vulnerable"], add["slope_secure"], add["span"]) == (0.5, 1.0, 0.0, 2.0)
    assert add["chosen"] and (add["alpha_min"], add["alpha_max"]) == (-2.0, 2.0)
    assert not amp["chosen"] and amp["slope"] is None and amp["span"] is None


def test_condition_selects_shares_by_label():
    from dataclasses import replace

    from vulnsteer.experiments.summary import condition_selects
    rows = _rows([0.0] * 8)
    assert condition_selects(rows) is None
    rows = [replace(r, selected=r.label == 1 or r.index == 1, conditional=r.steered) for r in rows]
    assert condition_selects(rows) == {"vulnerable": 1.0, "secure": 0.25}




def test_the_random_row_and_its_deltas_use_one_definition():
    # draws whose median says no but one of three says yes: the median row and the pooled row differ
    steered = [1.0 if i % 2 == 0 else -1.0 for i in range(8)]
    rows = _rows(steered, random=[[-1.0, -2.0, 5.0]] * 8)
    conds, d = condition_metrics(rows, 200, 0), deltas(rows, 200, 0)
    vs = steered_minus_random(rows, 200, 0)
    acc = {c: conds[c]["all"]["accuracy"][0] for c in ("baseline", "steered", "random")}
    assert math.isclose(acc["random"], 0.5)  # pooled: 4 of 12 vulnerable draws say yes, 8 of 12 secure say no
    assert math.isclose(d["random"]["accuracy"][0], acc["random"] - acc["baseline"])
    assert math.isclose(vs["accuracy"][0], acc["steered"] - acc["random"])
    text = verdict_text(conds, d, bias_only(d), vs)
    assert "random-direction control (all draws pooled)" in text
