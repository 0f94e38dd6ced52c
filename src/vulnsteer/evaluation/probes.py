"""Per-layer logistic probes scored by grouped cross-validation, a label-shuffled control, and the probe
direction mapped back to the residual stream for steering.

The scaler is fit inside each training fold (a Pipeline), and folds are grouped, so neither the
standardisation nor a scenario's twin leaks test information into a probe.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from vulnsteer.blas import one_blas_thread
from vulnsteer.errors import DataError
from vulnsteer.evaluation.metrics import auroc
from vulnsteer.evaluation.splits import grouped_kfold
from vulnsteer.progress import progress_bar

# lbfgs on standardised features converges in well under 200 iterations at C=1 for n~300, d~900; the cap
# bounds the time of a nearly separable layer, where the optimum is still close enough for ranking.
MAX_ITER = 200


@dataclass(frozen=True)
class ProbeResult:
    """Out-of-fold probe quality per layer (index 0 = output of block 0)."""

    auroc: np.ndarray  # [n_layers] AUROC of the pooled out-of-fold scores
    accuracy: np.ndarray  # [n_layers] out-of-fold accuracy at probability 0.5
    scores: np.ndarray  # [n_layers, n] out-of-fold P(vulnerable) per sample
    labels: np.ndarray  # [n] labels the probes were scored against (permuted when shuffled)
    folds: list[tuple[np.ndarray, np.ndarray]]  # grouped (train_idx, test_idx) shared by every layer
    per_cwe_auroc: dict[str, np.ndarray] = field(default_factory=dict)  # CWE -> [n_layers]; NaN if one class
    shuffled: bool = False

    @property
    def best_layer(self) -> int:
        return int(np.nanargmax(self.auroc))


def _probe(C: float, seed: int) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed))




def _check(X: np.ndarray, y: np.ndarray, groups: Sequence[str], ndim: int) -> None:
    if X.ndim != ndim:
        raise DataError(f"activations must have {ndim} dimensions, got shape {X.shape}")
    if len(y) != len(X) or len(groups) != len(X):
        raise DataError(f"{len(X)} activations but {len(y)} labels and {len(groups)} groups; pass one per sample")
    if not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise DataError("probe labels must be 0/1 with both classes present")
    if not np.isfinite(X).all():
        raise DataError("activations contain NaN or inf; recompute the activation cache")


def layer_probes(
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    k: int = 5,
    seed: int = 0,
    C: float = 1.0,
    cwes: Sequence[str] | None = None,
    shuffle_labels: bool = False,
    progress: bool = False,
) -> ProbeResult:
    """Fit a logistic probe per layer of `X` [n, n_layers, d] with grouped k-fold CV (stratified by label).

    `shuffle_labels=True` permutes the labels (seeded by `seed`) before anything else: the control that
    shows the AUROC a probe reaches on this data without a real signal.
    """
    X = np.asarray(X)
    y = np.asarray(y).astype(int)
    _check(X, y, groups, 3)
    if shuffle_labels:
        y = np.random.default_rng(seed).permutation(y)
    folds = grouped_kfold(groups, k, seed, labels=y)
    n, n_layers, _ = X.shape
    scores = np.empty((n_layers, n))
    label = "probing layers" + (" (shuffled labels)" if shuffle_labels else "")
    with progress_bar(label, total=n_layers, show=progress) as advance, warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for layer in range(n_layers):
            Xl = X[:, layer, :]
            for train, test in folds:
                scores[layer, test] = _probe(C, seed).fit(Xl[train], y[train]).predict_proba(Xl[test])[:, 1]
            advance(1)
    return _result(scores, y, cwes, folds, shuffle_labels)


def _result(scores: np.ndarray, y: np.ndarray, cwes: Sequence[str] | None,
            folds: list[tuple[np.ndarray, np.ndarray]], shuffled: bool) -> ProbeResult:
    """Per-layer (and per-CWE) AUROC and accuracy of `scores` [n_layers, n] P(vulnerable) against `y`."""
    n_layers, n = scores.shape
    per_cwe: dict[str, np.ndarray] = {}
    if cwes is not None:
        c = np.asarray(list(cwes), dtype=str)
        if len(c) != n:
            raise DataError(f"cwes has {len(c)} entries for {n} samples; pass one per sample")
        for name in sorted(set(c.tolist())):
            m = c == name
            per_cwe[name] = np.array([auroc(y[m], scores[layer, m]) for layer in range(n_layers)])
    return ProbeResult(
        auroc=np.array([auroc(y, scores[layer]) for layer in range(n_layers)]),
        accuracy=((scores >= 0.5) == y[None, :]).mean(axis=1),
        scores=scores,
        labels=y,
        folds=folds,
        per_cwe_auroc=per_cwe,
        shuffled=shuffled,
    )


def shuffled_control(
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    k: int = 5,
    seed: int = 0,
    C: float = 1.0,
    n_repeats: int = 3,
    progress: bool = False,
) -> np.ndarray:
    """[n_repeats, n_layers] out-of-fold AUROC of probes trained on permuted labels (chance level and its spread)."""
    return np.stack(
        [
            layer_probes(X, y, groups, k, seed + r, C, shuffle_labels=True, progress=progress).auroc
            for r in range(n_repeats)
        ]
    )


def transfer_probes(
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
    C: float = 1.0,
    cwes: Sequence[str] | None = None,
    shuffle_labels: bool = False,
    progress: bool = False,
) -> ProbeResult:
    """A probe per layer fit on every fit-on sample `X_fit` [n_fit, n_layers, d] and scored on the test-on
    samples `X_test` (a different data set: no folds, so `folds` is empty). `shuffle_labels` permutes the
    fit-on labels only (seeded): the chance level of a probe that learnt nothing about the label."""
    X_fit, X_test = np.asarray(X_fit), np.asarray(X_test)
    y_fit, y_test = np.asarray(y_fit).astype(int), np.asarray(y_test).astype(int)
    _check(X_fit, y_fit, [""] * len(y_fit), 3)
    if X_test.ndim != 3 or X_test.shape[1:] != X_fit.shape[1:] or len(y_test) != len(X_test):
        raise DataError(f"test activations of shape {X_test.shape} with {len(y_test)} labels do not match the "
                        f"fit-on activations of shape {X_fit.shape}")
    if shuffle_labels:
        y_fit = np.random.default_rng(seed).permutation(y_fit)
    n_layers = X_fit.shape[1]
    scores = np.empty((n_layers, len(X_test)))
    label = "probing layers" + (" (shuffled labels)" if shuffle_labels else "")
    with progress_bar(label, total=n_layers, show=progress) as advance, warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for layer in range(n_layers):
            scores[layer] = _probe(C, seed).fit(X_fit[:, layer], y_fit).predict_proba(X_test[:, layer])[:, 1]
            advance(1)
    return _result(scores, y_test, cwes, [], shuffle_labels)


def fit_probe(X: np.ndarray, y: np.ndarray, C: float = 1.0, seed: int = 0) -> Pipeline:
    """One probe (standardise, then logistic regression) fit on [n, d] activations; the same model the
    per-layer curve uses. Its steering direction is `vulnsteer.vectors.methods.probe_direction`."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    _check(X, y, [""] * len(y), 2)
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _probe(C, seed).fit(X, y)
