"""Tables from fabricated summaries (test input shaped like docs/RUN_FOLDER.md, not results)."""

from __future__ import annotations

import re

import pytest

from vulnsteer.errors import DataError
from vulnsteer.report.family import comparisons_data
from vulnsteer.report.tables import (
    CONDITIONS,
    OPTIONAL_CONDITIONS,
    PC_LABEL,
    baseline_data,
    conditional_data,
    fmt,
    fmt_ci,
    fmt_delta,
    headline_data,
    no_effect_sentence,
    per_cwe_data,
    published_models,
    templates_data,
)

NAN = float("nan")


def metrics(acc: float, auroc: float | None = 0.7, n: int = 20) -> dict:
    return {
        "n": [n, n, n], "accuracy": [acc, acc - 0.12, acc + 0.13], "tpr": [0.8, 0.6, 0.9], "tnr": [0.4, 0.2, 0.6],
        "balanced_accuracy": [0.6, 0.5, 0.7], "f1": [0.6, 0.5, 0.7],
        "auroc": [auroc, None, None] if auroc is None else [auroc, auroc - 0.1, auroc + 0.1],
        "pairs_both_right": [0.3, 0.1, 0.5], "pair_ranking": [0.6, 0.4, 0.8], "unknown_rate": [0.0, 0.0, 0.0],
        "yes_rate": [0.7, 0.6, 0.8],
    }


def summary_by_cwe(acc: float) -> dict:
    return {"CWE-416": metrics(acc), "CWE-22": metrics(acc, auroc=None), "CWE-78": metrics(acc, n=8),
            "all": metrics(acc, n=48)}


def published(n_models: int = 3) -> dict:
    models = {f"model-{i}": {c: {"accuracy": 0.3 + 0.05 * i, "tpr": 0.5, "tnr": 0.5, "na_rate": 0.0, "n": 10}
                             for c in ("CWE-22", "CWE-78", "all")} for i in range(n_models)}
    return {"study": "prompts", "prompt": "S1", "subset": "hand-crafted", "models": models}


def steer_summary() -> dict:
    conditions = {c: summary_by_cwe(0.5 + 0.02 * i) for i, c in enumerate(CONDITIONS)}
    deltas = {c: {"accuracy": [0.02 * i, 0.02 * i - 0.05, 0.02 * i + 0.05, 0.07], "auroc": [NAN, NAN, NAN, NAN]}
              for i, c in enumerate(CONDITIONS) if c != "baseline"}
    return {"conditions": conditions, "deltas": deltas, "bias_only": {"steered": True, "random": False},
            "verdict": "steering moved the bias only", "flips": {}, "fluency": {}}


def test_fmt_handles_missing_values():
    assert fmt(0.6234) == "0.62" and fmt(0.6234, 3) == "0.623"
    assert fmt(None) == fmt(NAN) == fmt([None, 0.1, 0.2]) == "n/a"
    assert fmt_ci([0.62, 0.5, 0.75]) == "0.62 [0.50, 0.75]"
    assert fmt_ci([0.62, None, None]) == "0.62 [n/a]"
    assert fmt_ci(None) == "n/a"


def test_baseline_rows_values_and_published_columns():
    data = baseline_data({"score": summary_by_cwe(0.62)}, published(3))
    assert [r[0] for r in data.rows] == ["CWE-22", "CWE-78", "CWE-416", "all"]
    assert data.columns[-3:] == ["pub: model-2", "pub: model-1", "pub: model-0"]  # best overall accuracy first
    row = {r[0]: r for r in data.rows}
    assert row["CWE-78"][1] == "8" and row["all"][1] == "48"
    assert row["all"][2] == "0.62 [0.50, 0.75]"
    assert row["CWE-22"][data.columns.index("AUROC")] == "n/a"
    assert row["CWE-416"][-1] == "n/a"  # published has no CWE-416
    assert row["all"][-1] == "0.30" and row["all"][-3] == "0.40"
    assert "hand-crafted" in data.note


def test_many_published_models_are_capped_with_a_note():
    models, note = published_models(published(10))
    assert models == [f"model-{i}" for i in range(9, 3, -1)]
    assert "published.json" in note
    assert published_models(None) == ([], "")


def test_missing_reading_is_a_data_error():
    with pytest.raises(DataError, match="generation"):
        baseline_data({"score": summary_by_cwe(0.5)}, None, reading="generation")


def test_headline_rows_deltas_and_bias_flag():
    data = headline_data(steer_summary())
    assert [r[0] for r in data.rows] == list(CONDITIONS.values())
    rows = {r[0]: r for r in data.rows}
    steered = rows[CONDITIONS["steered"]]
    assert steered[1] == "0.54 [0.42, 0.67]"  # accuracy
    assert steered[data.columns.index("Δ accuracy")] == "0.04 [-0.01, 0.09] MDE 0.07"
    assert PC_LABEL in data.columns and PC_LABEL == "P-C (pairs both right)"
    assert steered[data.columns.index("Δ AUROC")] == "n/a"
    assert steered[-1] == "yes" and rows[CONDITIONS["random"]][-1] == "no" and rows[CONDITIONS["probe"]][-1] == "n/a"
    assert rows["baseline"][data.columns.index("Δ accuracy")] == "—"


def test_per_cwe_beside_published():
    data = per_cwe_data(steer_summary(), published(2))
    assert data.columns == ["CWE", "n", "baseline acc.", "steered acc.", "random-direction control acc.",
                            "pub: model-1", "pub: model-0"]
    assert [r[0] for r in data.rows] == ["CWE-22", "CWE-78", "CWE-416", "all"]
    assert data.rows[-1][3] == "0.54 [0.42, 0.67]"


def test_fmt_delta_adds_the_mde_when_stored():
    assert fmt_delta([0.02, -0.05, 0.09, 0.104]) == "0.02 [-0.05, 0.09] MDE 0.10"
    assert fmt_delta([0.02, -0.05, 0.09]) == "0.02 [-0.05, 0.09]"  # runs written before the MDE was stored
    assert fmt_delta([0.02, -0.05, 0.09, NAN]) == "0.02 [-0.05, 0.09]"
    assert fmt_delta([NAN, NAN, NAN, 0.1]) == "n/a"


def test_baseline_table_gives_every_metric_an_interval_and_names_p_c():
    data = baseline_data({"score": summary_by_cwe(0.6)}, None)
    assert PC_LABEL in data.columns
    all_row = data.rows[-1]
    assert all(re.fullmatch(r"-?\d\.\d\d \[-?\d\.\d\d, -?\d\.\d\d\]", c) for c in all_row[2:]), all_row


def test_template_table_has_a_row_per_template_with_intervals():
    table = {"reading": "score", "templates": [{"id": "S1", "description": "zero-shot", "metrics": metrics(0.5)},
                                               {"id": "R2", "description": "steps", "metrics": metrics(0.7)}]}
    data = templates_data(table)
    assert data.columns == ["template", "description", "n", "accuracy", "balanced acc.", "AUROC", PC_LABEL]
    assert data.rows[1] == ["R2", "steps", "20", "0.70 [0.58, 0.83]", "0.60 [0.50, 0.70]", "0.70 [0.60, 0.80]",
                            "0.30 [0.10, 0.50]"]


def test_conditional_and_amplify_rows_appear_only_where_the_run_has_them():
    summary = steer_summary()
    for name in OPTIONAL_CONDITIONS:
        del summary["conditions"][name]
    labels = [r[0] for r in headline_data(summary).rows]
    assert labels == [v for k, v in CONDITIONS.items() if k not in OPTIONAL_CONDITIONS]
    full = steer_summary()
    full["conditional_minus_random"] = {"accuracy": [0.1, -0.02, 0.2, 0.15]}
    rows = {r[0] for r in headline_data(full).rows}
    assert {CONDITIONS["amplify"], CONDITIONS["conditional"]} <= rows
    compared = [r for r in comparisons_data(full).rows
                if r[0] == "conditional − random-direction control, same condition (paired)"]
    assert compared[0][1:5] == ["accuracy", "0.10 [-0.02, 0.20]", "0.15",
                                "the interval rules out changes below -0.02 or above 0.20"]


def test_conditional_choices_table_says_the_rule_and_how_many_were_steered():
    data = conditional_data({"folds": [dict(fold=0, rule="steer where the projection at block 2 > 1.5",
                                            config="L2 caa add:8", val_metrics={"balanced_accuracy": 0.75},
                                            val_selected=3, n_val=6, test_selected=4, n_test=6)]})
    assert data.rows == [["0", "steer where the projection at block 2 > 1.5", "L2 caa add:8", "0.75", "3 of 6",
                          "4 of 6"]]


def test_a_zero_width_interval_says_identical_answers_not_no_effect_larger_than_zero():
    assert "zero width" in no_effect_sentence([0.0, 0.0, 0.0, 0.0])
    assert "no effect larger than" not in no_effect_sentence([0.0, 0.0, 0.0, 0.0])
