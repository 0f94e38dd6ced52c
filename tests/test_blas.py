"""The probe fits run on one BLAS thread (vulnsteer/blas.py says why), and give what the default threads give."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info

import vulnsteer.evaluation.probes as probes
from vulnsteer.blas import one_blas_thread
from vulnsteer.vectors.methods import probe_direction


def _blas_threads() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def _data(n: int = 60, d: int = 40) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, 3, d)) * np.exp(rng.normal(0, 1.5, d))
    X[:, 1, 0] += 2.0 * y
    return X, y, [str(i % 10) for i in range(n)]


def test_every_probe_fit_runs_on_one_blas_thread_and_the_threads_are_restored(monkeypatch):
    seen: list[int] = []
    fit = LogisticRegression.fit

    def recording(self, *a, **k):
        seen.append(_blas_threads())
        return fit(self, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", recording)
    before = _blas_threads()
    X, y, groups = _data()
    probes.layer_probes(X, y, groups, k=3)
    probes.transfer_probes(X, y, X, y)
    probes.fit_probe(X[:, 1], y)
    probe_direction(torch.tensor(X[:, 1], dtype=torch.float32), torch.tensor(y))
    assert len(seen) == 3 * 3 + 3 + 1 + 1
    assert set(seen) == {1}
    assert _blas_threads() == before
    with one_blas_thread():
        assert _blas_threads() == 1


def test_one_thread_gives_the_default_threads_scores(monkeypatch):
    X, y, groups = _data()
    one = probes.layer_probes(X, y, groups, k=3)
    monkeypatch.setattr(probes, "one_blas_thread", contextlib.nullcontext)
    default = probes.layer_probes(X, y, groups, k=3)
    np.testing.assert_allclose(one.scores, default.scores, rtol=0, atol=1e-9)
    assert one.best_layer == default.best_layer == 1
