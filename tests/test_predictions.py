"""Predictions as columns, and their metrics per CWE."""

from __future__ import annotations

import numpy as np
import pytest

from test_metrics import _synthetic
from vulnsteer.evaluation.metrics import MetricWithCI, detection_metrics, metrics_with_ci
from vulnsteer.evaluation.predictions import Predictions, per_cwe


def test_per_cwe():
    labels, scores, verdicts, pairs, groups = _synthetic(60, 5)
    cwes = ["CWE-79" if int(g[1:]) % 3 else "CWE-89" for g in groups]
    out = per_cwe(Predictions.of(labels, scores, pairs, groups, cwes, verdicts=verdicts), n_boot=200)
    assert list(out) == ["CWE-79", "CWE-89", "all"]
    assert out["all"] == metrics_with_ci(labels, scores, verdicts, pairs, groups, n_boot=200)
    m = np.array(cwes) == "CWE-89"
    sub = detection_metrics(labels[m], scores[m], verdicts[m], [p for p, k in zip(pairs, m) if k])
    assert out["CWE-89"]["accuracy"].value == pytest.approx(sub["accuracy"])
    assert out["CWE-89"]["n"].value == m.sum()
    assert isinstance(out["CWE-89"]["auroc"], MetricWithCI)
