"""Steering directions from contrastive residuals: CAA mean difference, RepE PCA, logistic probe.

Conventions: tensors in, float32 tensors out (computed in float64). Layer `l` everywhere in vulnsteer
is the 0-based block whose *output* is read and steered. `vulnsteer.vectors.training` turns these
primitives into the per-layer, per-method (and optionally per-CWE) directions the experiments use.

PCA follows steering-vectors' `pca_aggregator` (uncentred PCA of the paired differences, done by
symmetrising them as {D, -D}) rather than repeng's `pca_diff` (sklearn PCA, which centres D): when
every pair moves the residual the same way, centring removes exactly that shared direction and
leaves only the noise around it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from vulnsteer.blas import one_blas_thread
from vulnsteer.data.records import Record
from vulnsteer.errors import DataError, VulnsteerError
from vulnsteer.options import Method


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _out(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _check_2d(name: str, t: Tensor) -> None:
    if t.ndim != 2 or t.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty [n, d] tensor, got shape {tuple(t.shape)}")


def caa_direction(pos: Tensor, neg: Tensor, paired: bool = True) -> Tensor:
    """CAA: mean of paired differences pos[i] - neg[i], or difference of class means when unpaired."""
    _check_2d("pos", pos)
    _check_2d("neg", neg)
    if pos.shape[1] != neg.shape[1]:
        raise DataError(f"pos and neg widths differ: {pos.shape[1]} vs {neg.shape[1]}")
    p, n = _np(pos), _np(neg)
    if paired:
        if p.shape != n.shape:
            raise DataError(f"paired CAA needs pos and neg of equal shape, got {p.shape} and {n.shape}")
        return _out((p - n).mean(axis=0))
    return _out(p.mean(axis=0) - n.mean(axis=0))


def pca_direction(pos: Tensor, neg: Tensor) -> Tensor:
    """RepE: first principal component of the paired differences, unit norm, with mean(pos - neg) · v >= 0.

    Uncentred (see module docstring); fitting sklearn's PCA on {D, -D} makes its centring a no-op.
    """
    _check_2d("pos", pos)
    _check_2d("neg", neg)
    if pos.shape != neg.shape:
        raise DataError(f"PCA needs paired pos and neg of equal shape, got {tuple(pos.shape)} and {tuple(neg.shape)}")
    diffs = _np(pos) - _np(neg)
    if not np.any(diffs):
        raise DataError("every pos - neg difference is zero; PCA has no direction to find")
    v = PCA(n_components=1, svd_solver="full").fit(np.concatenate([diffs, -diffs])).components_[0]
    v = v / np.linalg.norm(v)
    if diffs.mean(axis=0) @ v < 0:
        v = -v
    return _out(v)


def probe_direction(x: Tensor, y: Tensor, C: float = 1.0, max_iter: int = 2000) -> Tensor:
    """Logistic-regression weight in the raw residual space, pointing towards label 1.

    Fitted on standardised features (residual dimensions differ in scale by orders of magnitude);
    w_raw = w_std / std is the same decision function expressed on raw residuals.
    """
    _check_2d("x", x)
    labels = y.detach().to("cpu").numpy().reshape(-1)
    if labels.shape[0] != x.shape[0]:
        raise DataError(f"x has {x.shape[0]} rows but y has {labels.shape[0]} labels")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise DataError(f"probe labels must be 0/1, got values {sorted(np.unique(labels).tolist())}")
    if len(np.unique(labels)) < 2:
        raise DataError("probe needs both labels (0 and 1) in the training records")
    with one_blas_thread():
        scaler = StandardScaler().fit(_np(x))
        clf = LogisticRegression(C=C, max_iter=max_iter).fit(scaler.transform(_np(x)), labels.astype(int))
    return _out(clf.coef_[0] / scaler.scale_)


def mean_residual_norm(*acts: Tensor) -> float:
    """Mean L2 norm of the rows of the given [n, d] residual tensors taken together."""
    rows = torch.cat([a.detach().double().reshape(-1, a.shape[-1]) for a in acts])
    return float(rows.norm(dim=-1).mean())


def training_means(
    acts_pos: Tensor, acts_neg: Tensor, layers: Iterable[int]
) -> dict[int, Tensor]:
    """Per layer, the midpoint of the two class means (the centre the amplification operator projects from).

    The midpoint rather than the pooled mean, so that class imbalance does not move the centre towards
    the larger class.
    """
    _check_3d(acts_pos, acts_neg)
    out = {}
    for layer in _checked_layers(layers, acts_pos.shape[1]):
        mid = (acts_pos[:, layer].double().mean(0) + acts_neg[:, layer].double().mean(0)) / 2
        out[layer] = mid.float()
    return out


def _check_3d(acts_pos: Tensor, acts_neg: Tensor) -> None:
    for name, t in (("acts_pos", acts_pos), ("acts_neg", acts_neg)):
        if t.ndim != 3 or t.shape[0] == 0:
            raise DataError(f"{name} must be a non-empty [n, L, d] tensor, got shape {tuple(t.shape)}")
    if acts_pos.shape[1:] != acts_neg.shape[1:]:
        raise DataError(f"acts_pos and acts_neg disagree on [L, d]: {tuple(acts_pos.shape[1:])} vs {tuple(acts_neg.shape[1:])}")


def _checked_layers(layers: Iterable[int], n_layers: int) -> list[int]:
    out = [int(layer) for layer in layers]
    bad = [layer for layer in out if not 0 <= layer < n_layers]
    if bad:
        raise VulnsteerError(f"layer(s) {bad} out of range: the activations have {n_layers} layers (0..{n_layers - 1})")
    if not out:
        raise VulnsteerError("no layers given")
    return out


def pair_indices(records: Sequence[Record]) -> list[tuple[int, int]]:
    """(vulnerable index, secure index) pairs sharing a pair_id.

    A pair_id with several vulnerable or secure records yields every vulnerable x secure combination,
    so the mean difference equals the difference of the two group means and no arbitrary order enters.
    Records without a counterpart appear in no pair.
    """
    groups: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, rec in enumerate(records):
        if rec.pair_id is not None:
            groups[rec.pair_id][0 if rec.is_vulnerable else 1].append(i)
    return [(v, s) for pid in sorted(groups) for v in groups[pid][0] for s in groups[pid][1]]


def probe_aggregator(pos: Tensor, neg: Tensor) -> Tensor:
    """`probe_direction` on every vulnerable (`pos`) and secure (`neg`) residual."""
    x = torch.cat([pos, neg])
    y = torch.cat([torch.ones(len(pos), dtype=torch.long), torch.zeros(len(neg), dtype=torch.long)])
    return probe_direction(x, y)


@dataclass(frozen=True)
class Aggregator:
    """A direction builder, steering-vectors style: (positive residuals, negative residuals) -> [d].

    `paired`: row i of pos and row i of neg are a vulnerable/secure pair (CAA, PCA need pairs); otherwise
    pos holds every vulnerable and neg every secure residual.
    """

    fn: Callable[[Tensor, Tensor], Tensor]
    paired: bool


AGGREGATORS: dict[Method, Aggregator] = {
    Method.CAA: Aggregator(lambda pos, neg: caa_direction(pos, neg, paired=True), paired=True),
    Method.PCA: Aggregator(pca_direction, paired=True),
    Method.PROBE: Aggregator(probe_aggregator, paired=False),
}
