"""Conditional steering on a tiny model: unselected samples keep their unsteered score bit for bit, selected ones
take the steered score, the condition is chosen on validation only, and an unselected file's conditional
generation is its unsteered text byte for byte; the run's report answers whether steering carries the signal."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.errors import VulnsteerError
from vulnsteer.evaluation.splits import cross_fit
from vulnsteer.experiments.conditional import (
    ConditionalResult,
    choose_condition,
    conditional_steering,
    masked_random,
    with_conditional,
    with_conditional_text,
)
from vulnsteer.experiments.config import SteerConfig
from vulnsteer.experiments.steer import run_steering
from vulnsteer.experiments.steer_results import Choice, SteerResult
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.tiny import tiny_model, tiny_tokenizer
from vulnsteer.options import ConditionSide, Method, Operator, Readout
from vulnsteer.prompting.samples import SampleSet, build_samples, run_samples

CWES = ("CWE-787", "CWE-89", "CWE-22")


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


@pytest.fixture(scope="module")
def steered(data_root):
    tok = tiny_tokenizer()
    m = tiny_model("qwen2")
    loaded = LoadedModel(m, tok, "tiny", "1" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]
    words = AnswerWords(*map(tuple, answer_token_ids(tok)))
    recs = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe in CWES]
    main = run_samples(build_samples(recs, loaded, "S1", cwe_names(data_root), data_root), loaded, words,
                       keep_states=True)
    cfg = SteerConfig(layers=(0, 2), methods=("caa",), add_alphas=(-4.0, 4.0), amplify_alphas=(4.0,), ablate=False,
                      k_folds=3, n_random=2)
    return main, run_steering(loaded.parts, main, words, cfg, Readout.ANSWER)


def test_unselected_samples_keep_their_unsteered_score_bit_for_bit(steered):
    main, result = steered
    cond = conditional_steering(main, result, "balanced_accuracy", Readout.ANSWER)
    assert sorted(cond.selected) == list(range(len(main.samples)))  # every test sample decided once
    # the run's own condition, and an alternating one so that both kinds of sample certainly occur
    alternating = ConditionalResult(cond.choices, {i: i % 2 == 0 for i in cond.selected}, cond.projection)
    for c in (cond, alternating):
        for r in with_conditional(result.test, c):
            assert r.selected is c.selected[r.index]
            assert bits(r.conditional) == bits(r.steered if r.selected else r.baseline)
            assert bits(r.conditional) == bits(float(main.scores[r.index])) or r.selected
            assert masked_random(r) == (list(r.random) if r.selected else [r.baseline] * len(r.random))
    for c in cond.choices:
        assert c.config == result.choices[c.fold].label()
        assert c.test_selected == sum(cond.selected[int(i)] for i in result.folds.test(c.fold))


def _flip_labels(main: SampleSet, idx) -> SampleSet:
    """`main` with the labels of samples `idx` flipped (a permutation of a fold's labels can be the identity)."""
    flip = {int(i) for i in idx}
    samples = [replace(s, record=replace(s.record, label=1 - s.record.label)) if i in flip else s
               for i, s in enumerate(main.samples)]
    return replace(main, samples=samples)


@dataclass
class _LeakyFolds:
    """A planted leak: every fold "validates" on its own test samples."""

    folds: object

    def split(self, f: int):
        train, _val, test = self.folds.split(f)  # type: ignore[attr-defined]
        return train, test, test


def _synthetic(main: SampleSet) -> tuple[SampleSet, SteerResult]:
    """Steering that says yes to every sample, unsteered scores that say no to every sample, so the condition
    alone decides each verdict; sweep scores for every sample in every fold (the leak needs test ones)."""
    folds = cross_fit([s.record.group for s in main.samples], 3, 0, labels=main.labels.tolist())
    result = SteerResult(folds=folds)
    result.choices = [Choice(f, 0, Method.CAA, Operator.ADD, 4.0, {}) for f in range(folds.k)]
    result.sweep = [dict(fold=f, index=i, layer=0, method="caa", operator="add", alpha=4.0, score=3.0)
                    for f in range(folds.k) for i in range(len(main.samples))]
    return replace(main, scores=torch.full_like(main.scores, -3.0)), result


def test_the_condition_comes_from_validation_only_and_a_planted_leak_is_caught(steered):
    main, real = steered
    synthetic, fake = _synthetic(main)
    for samples, result in ((main, real), (synthetic, fake)):
        base = conditional_steering(samples, result, "balanced_accuracy", Readout.ANSWER)
        for f in range(result.folds.k):
            test = result.folds.test(f)
            one = replace(result, choices=[result.choices[f]])
            flipped = conditional_steering(_flip_labels(samples, test), one, "balanced_accuracy", Readout.ANSWER)
            assert flipped.choices == [base.choices[f]]
            assert {int(i): base.selected[int(i)] for i in test} == flipped.selected
    # The same check on a chooser that reads the test fold's labels fails: the check has power.
    leaky = replace(fake, folds=_LeakyFolds(fake.folds))
    base = conditional_steering(synthetic, leaky, "balanced_accuracy", Readout.ANSWER)
    changed = []
    for f in range(fake.folds.k):
        flipped = conditional_steering(_flip_labels(synthetic, fake.folds.test(f)),
                                       replace(leaky, choices=[leaky.choices[f]]), "balanced_accuracy", Readout.ANSWER)
        changed.append(any(flipped.selected[i] != base.selected[i] for i in flipped.selected))
    assert any(changed)


def test_choose_condition_finds_the_separating_threshold_and_side():
    labels = [1, 1, 0, 0, 1, 0]
    proj = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # layer 0: no signal
                     [-2.0, -1.5, 1.0, 2.0, -3.0, 0.5]])  # layer 1: vulnerable files project low
    layer, side, t, m, n = choose_condition(proj, np.full(6, 3.0), np.full(6, -3.0), labels, [None] * 6,
                                            "balanced_accuracy")
    assert (layer, side, n) == (1, ConditionSide.BELOW, 3) and -1.5 < t < 0.5
    assert m["balanced_accuracy"] == 1.0


def test_choose_condition_breaks_ties_by_auroc_then_fewer_steered_then_the_lower_layer():
    labels, yes = [1, 0, 1, 0], np.full(4, 1.0)  # every answer is yes, steered or not: balanced accuracy 0.5
    # AUROC before the count: steering every file ranks the vulnerable ones higher (AUROC 1), steering none
    # leaves four equal scores (AUROC 0.5), though it steers fewer.
    _, _, _, m, n = choose_condition(np.zeros((1, 4)), np.array([2.0, 1.5, 2.0, 1.5]), yes, labels, [None] * 4,
                                     "balanced_accuracy")
    assert (n, m["auroc"]) == (4, 1.0)
    # Steering that changes no score: every condition ties on both metrics, so the one steering no file wins,
    # at the lower of two layers (each has one).
    two_layers = np.array([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    layer, _, _, _, n = choose_condition(two_layers, yes, yes, labels, [None] * 4, "balanced_accuracy")
    assert (layer, n) == (0, 0)


def test_an_unselected_files_conditional_text_is_its_unsteered_text(steered):
    _, result = steered
    rows = with_conditional(result.test, ConditionalResult([], {r.index: r.index % 2 == 0 for r in result.test}, {}))
    gens = [dict(id=r.id, unsteered=f"plain ü {r.index}\n", steered=f"pushed {r.index}", unsteered_verdict="yes",
                 steered_verdict="no") for r in rows]
    out = with_conditional_text(gens, rows)
    for r, g in zip(rows, out):
        if r.selected:
            assert g["conditional"] == g["steered"] and g["conditional_verdict"] == "no" and g["conditional_selected"]
        else:
            assert g["conditional"].encode() == g["unsteered"].encode() and g["conditional_selected"] is False
    assert with_conditional_text(gens, result.test) == gens  # without conditional steering: unchanged


def test_conditional_must_be_a_bool():
    assert SteerConfig().conditional is True
    with pytest.raises(VulnsteerError, match="conditional"):
        SteerConfig(conditional="yes")  # type: ignore[arg-type]


def test_a_run_reports_conditional_and_amplify_and_answers_the_question(data_root, tmp_path, monkeypatch):
    import vulnsteer as vs
    from vulnsteer.experiments.baseline_config import BaselineConfig
    from vulnsteer.experiments.config import RunConfig
    from vulnsteer.experiments.run_folder import schema
    from vulnsteer.report.verdicts import CARRY_QUESTION

    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    cfg = RunConfig(baseline=BaselineConfig(cwes=CWES, generate=False, n_boot=100),
                    steer=SteerConfig(layers=(1, 2), methods=("caa",), add_alphas=(-4.0, 4.0), amplify_alphas=(4.0,),
                                      ablate=False, k_folds=3, n_random=1),
                    n_side_by_side=4, side_by_side_tokens=6, n_fluency=1)
    run_dir = vs.run(cfg, model="tiny-qwen2", out=tmp_path / "run", cache_dir=tmp_path / "cache")
    test = [json.loads(line) for line in (run_dir / schema.STEER_TEST).read_text().splitlines()]
    assert all(r["selected"] is not None and r["amplify_config"].split()[2].startswith("amplify:") for r in test)
    summary = json.loads((run_dir / schema.STEER_SUMMARY).read_text())
    assert {"conditional", "amplify"} <= set(summary["conditions"]) and len(summary["conditional_minus_random"]["accuracy"]) == 4
    assert len(json.loads((run_dir / schema.STEER_CONDITIONAL).read_text())["folds"]) == 3
    slopes = summary["strength_slopes"]  # per fold: the chosen operator's slope, and amplify's (one strength: none)
    assert sorted(r["fold"] for r in slopes if r["chosen"]) == [0, 1, 2]
    assert all((r["slope"] is None) == (r["operator"] == "amplify") for r in slopes)
    assert set(summary["condition_selects"]) == {"vulnerable", "secure"}
    gens = [json.loads(line) for line in (run_dir / schema.STEER_GENERATIONS).read_text().splitlines()]
    selected = {r["id"]: r["selected"] for r in test}
    assert gens and all(g["conditional_selected"] is selected[g["id"]] for g in gens)
    for g in gens:
        assert g["conditional"] == (g["steered"] if g["conditional_selected"] else g["unsteered"])
    report = (run_dir / schema.REPORT_MD).read_text()
    for text in ("| amplify (chosen on validation) |", "| conditional (steered where the probe condition passes) |",
                 "conditional − random-direction control, same condition (paired)", CARRY_QUESTION,
                 "On held-out files, ", "Generated explanation: the condition selected",
                 "Condition chosen on each validation fold"):
        assert text in report, text
    low = summary["steered_minus_random"]["balanced_accuracy"][1]
    assert ("Which link failed:" in report) == (not low > 0)  # the diagnosis exactly when steering did not beat random
    if not all(g["conditional_selected"] for g in gens):
        assert "(not selected: the unsteered text)" in report


def test_no_conditional_on_the_command_line_leaves_it_out(data_root, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from vulnsteer.cli import app
    from vulnsteer.experiments.run_folder import schema

    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    args = ["steer", "--model", "tiny-qwen2", "--cwe", ",".join(CWES), "--layers", "1", "--methods", "caa",
            "--folds", "3", "--n-random", "1", "--n-boot", "100", "--cache-dir", str(tmp_path / "cache")]
    for flag, wanted in (("--no-conditional", False), ("--conditional", True)):
        out = tmp_path / flag.strip("-")
        result = CliRunner().invoke(app, [*args, flag, "--out", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert json.loads((out / "config.json").read_text())["steer"]["conditional"] is wanted
        assert (out / schema.STEER_CONDITIONAL).is_file() is wanted
        assert ("conditional" in json.loads((out / schema.STEER_SUMMARY).read_text())["conditions"]) is wanted
