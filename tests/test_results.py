"""Typed readers of a run folder's headline numbers."""

from __future__ import annotations

import json

import pytest

from vulnsteer.errors import DataError
from vulnsteer.report.results import Estimate, read_result


@pytest.mark.parametrize("stored, expected", [
    ([0.5, 0.25, 0.75], Estimate(0.5, 0.25, 0.75)),
    ([0.1, -0.1, 0.3, 0.2], Estimate(0.1, -0.1, 0.3, 0.2)),  # a paired delta with its minimal detectable effect
    ([None, None, None], Estimate(None)),  # NaN is stored as null
    (0.7, Estimate(0.7)),
    ([], None), ("0.5", None), (None, None), (True, None),
])
def test_an_estimate_reads_what_the_run_folder_stores(stored, expected):
    assert Estimate.read(stored) == expected


def test_an_estimate_shows_its_interval_as_the_tables_do():
    assert Estimate(0.5, 0.25, 0.75).text() == "0.50 [0.25, 0.75]" and Estimate(None).text() == "n/a"


def test_a_run_folder_reads_into_its_headline_numbers(tiny_study):
    cell = tiny_study / "cells" / "tiny-qwen2__answer__hand-crafted__crossfit"
    result = read_result(cell)
    steer = json.loads((cell / "steer" / "summary.json").read_text())
    assert result.unfinished is None
    assert result.probe_auroc == Estimate.read(steer["conditions"]["probe"]["all"]["auroc"])
    assert result.steered_minus_random["accuracy"] == Estimate.read(steer["steered_minus_random"]["accuracy"])
    curve = json.loads((cell / "probe" / "curve.json").read_text())
    assert result.curve is not None and result.curve.layers == curve["layers"]
    assert result.baseline_auroc is not None and result.baseline_auroc.low is not None


def test_an_empty_folder_reads_as_missing_and_a_broken_curve_fails_in_one_line(tmp_path):
    result = read_result(tmp_path)
    assert result.unfinished == "no readable config.json" and result.probe_auroc is None and result.curve is None
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "curve.json").write_text('{"layers": [0]}')
    with pytest.raises(DataError, match="incomplete probe curve"):
        read_result(tmp_path)
