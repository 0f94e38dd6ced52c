from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vulnsteer.errors import DataError
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.evaluation.probes import fit_probe, layer_probes, shuffled_control, transfer_probes
from vulnsteer.evaluation.splits import assert_no_leak
from vulnsteer.vectors.methods import probe_direction

N_PAIRS, N_LAYERS, D, PLANTED = 120, 4, 32, 2


def _planted(seed: int = 0):
    """Pairs (vulnerable, patched) whose layer PLANTED carries the label along one direction, on top of
    per-feature scales that differ by orders of magnitude, as residual streams do."""
    rng = np.random.default_rng(seed)
    y = np.tile([1, 0], N_PAIRS)
    groups = [f"g{i // 2}" for i in range(2 * N_PAIRS)]
    u = rng.normal(size=D)
    u /= np.linalg.norm(u)
    X = rng.normal(size=(2 * N_PAIRS, N_LAYERS, D))
    X[:, PLANTED, :] += 3.0 * (y[:, None] - 0.5) * u
    scale = np.exp(rng.normal(scale=1.5, size=D))
    return X * scale, y, groups, u, scale


def test_probe_finds_planted_layer():
    X, y, groups, _, _ = _planted()
    cwes = ["CWE-22" if i % 4 < 2 else "CWE-79" for i in range(len(y))]
    res = layer_probes(X, y, groups, k=5, seed=0, cwes=cwes)
    assert res.auroc[PLANTED] > 0.9 and res.accuracy[PLANTED] > 0.8
    others = np.delete(res.auroc, PLANTED)
    assert np.all(np.abs(others - 0.5) < 0.15)
    assert res.best_layer == PLANTED
    assert res.scores.shape == (N_LAYERS, len(y)) and np.all((res.scores >= 0) & (res.scores <= 1))
    for train, test in res.folds:
        assert_no_leak(groups, train, test)
    assert set(res.per_cwe_auroc) == {"CWE-22", "CWE-79"}
    assert all(v[PLANTED] > 0.85 for v in res.per_cwe_auroc.values())
    # out-of-fold scores feed the metrics module; pooled AUROC agrees
    verdicts = np.where(res.scores[PLANTED] >= 0.5, "yes", "no").astype(object)
    m = detection_metrics(y, res.scores[PLANTED], verdicts, groups)
    assert m["auroc"] == pytest.approx(res.auroc[PLANTED])
    assert m["accuracy"] == pytest.approx(res.accuracy[PLANTED])


def test_shuffled_labels_control_is_at_chance():
    X, y, groups, _, _ = _planted()
    control = layer_probes(X, y, groups, shuffle_labels=True)
    assert control.shuffled and not np.array_equal(control.labels, y)
    assert sorted(control.labels.tolist()) == sorted(y.tolist())
    assert abs(control.auroc[PLANTED] - 0.5) < 0.2
    reps = shuffled_control(X, y, groups, n_repeats=3)
    assert reps.shape == (3, N_LAYERS)
    assert abs(reps.mean() - 0.5) < 0.1


def test_grouped_cv_does_not_reward_memorising_twins():
    # Each group is two near-duplicate samples sharing one random label: nothing generalises across groups.
    rng = np.random.default_rng(1)
    n_groups, d = 60, 200
    base = rng.normal(size=(n_groups, d))
    X = np.repeat(base, 2, axis=0) + 0.01 * rng.normal(size=(2 * n_groups, d))
    y = np.repeat(rng.integers(0, 2, n_groups), 2)
    groups = [f"g{i // 2}" for i in range(2 * n_groups)]
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    naive = cross_val_predict(pipe, X, y, cv=KFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    assert roc_auc_score(y, naive) > 0.9  # the leak: a twin in training gives the answer away
    grouped = layer_probes(X[:, None, :], y, groups, k=5, seed=0)
    assert abs(grouped.auroc[0] - 0.5) < 0.15


def test_probe_direction_hand_computation():
    X, y, _, u, scale = _planted(1)
    Xl = X[:, PLANTED, :]
    direction = probe_direction(torch.tensor(Xl, dtype=torch.float32), torch.tensor(y)).double().numpy()
    # by hand: standardise with population std, fit the same logistic regression, divide by the std
    mu, sigma = Xl.mean(axis=0), Xl.std(axis=0)
    w = LogisticRegression(C=1.0, max_iter=200).fit((Xl - mu) / sigma, y).coef_[0]
    np.testing.assert_allclose(direction, w / sigma, rtol=2e-3, atol=1e-6)
    # it is the logit's gradient in raw space: logit differences between samples are raw dot products
    logits = fit_probe(Xl, y).decision_function(Xl)
    np.testing.assert_allclose(logits - logits[0], (Xl - Xl[0]) @ direction, rtol=2e-3, atol=1e-4)
    # and it recovers the planted direction: x = scale * (noise + label * u), so scale * direction ~ u
    # (compared in noise-whitened coordinates; raw cosines are dominated by the smallest-scale features)
    whitened = direction * scale
    assert whitened @ u / np.linalg.norm(whitened) > 0.75
    assert np.mean((Xl @ direction)[y == 1]) > np.mean((Xl @ direction)[y == 0])


def test_bad_input_raises():
    X, y, groups, _, _ = _planted()
    with pytest.raises(DataError):
        layer_probes(X[:, 0, :], y, groups)  # missing the layer axis
    with pytest.raises(DataError):
        layer_probes(X, y[:-1], groups)
    with pytest.raises(DataError):
        layer_probes(X, np.ones_like(y), groups)
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError):
        layer_probes(bad, y, groups)
    with pytest.raises(DataError):
        fit_probe(X[:, 0, :], y * 2)


def test_a_transfer_probe_reads_the_planted_direction_on_other_data():
    X, y, _, u, scale = _planted(seed=0)
    rng = np.random.default_rng(5)  # new samples with the same direction and feature scales
    y2 = rng.permutation(y)
    X2 = rng.normal(size=X.shape)
    X2[:, PLANTED, :] += 3.0 * (y2[:, None] - 0.5) * u
    X2 *= scale
    cwes = ["CWE-22" if i % 4 < 2 else "CWE-79" for i in range(len(y2))]
    res = transfer_probes(X, y, X2, y2, cwes=cwes)
    assert res.best_layer == PLANTED and res.auroc[PLANTED] > 0.9 and res.folds == []
    assert res.scores.shape == (N_LAYERS, len(y2)) and np.array_equal(res.labels, y2)
    assert set(res.per_cwe_auroc) == {"CWE-22", "CWE-79"}
    control = transfer_probes(X, y, X2, y2, shuffle_labels=True)
    assert abs(control.auroc[PLANTED] - 0.5) < 0.2, "permuted fit-on labels carry no signal"
    with pytest.raises(DataError):
        transfer_probes(X, y, X2[:, :2], y2)
