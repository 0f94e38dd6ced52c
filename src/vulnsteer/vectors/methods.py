"""Steering directions from contrastive residuals: CAA mean difference, RepE PCA, logistic probe.

Conventions: tensors in, float32 tensors out (computed in float64). Layer `l` everywhere in vulnsteer
is the 0-based block whose *output* is read and steered. Activation tensors are [n, L, d] with
`acts[:, l]` the output of block l; pass `embeddings_first=True` for the recorder's [n, L + 1, d]
layout (index 0 = input of block 0), which is then read at `acts[:, l + 1]`.

PCA follows steering-vectors' `pca_aggregator` (uncentred PCA of the paired differences, done by
symmetrising them as {D, -D}) rather than repeng's `pca_diff` (sklearn PCA, which centres D): when
every pair moves the residual the same way, centring removes exactly that shared direction and
leaves only the noise around it.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from rich.progress import Progress
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from vulnsteer.data.records import Record
from vulnsteer.errors import DataError, VulnsteerError

METHODS = ("caa", "pca", "probe")
Scaling = Literal["none", "unit", "mean_norm"]
SCALINGS = ("none", "unit", "mean_norm")
POOLED = "pooled"


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
    scaler = StandardScaler().fit(_np(x))
    clf = LogisticRegression(C=C, max_iter=max_iter).fit(scaler.transform(_np(x)), labels.astype(int))
    return _out(clf.coef_[0] / scaler.scale_)


def scale(v: Tensor, mode: Scaling, reference_norm: float | None = None) -> Tensor:
    """Rescale a direction: "none" as is, "unit" to norm 1, "mean_norm" to `reference_norm`.

    With "mean_norm" the reference is the mean norm of the training residuals at that layer, so a
    steering coefficient alpha is in units of a typical residual.
    """
    if mode not in SCALINGS:
        raise VulnsteerError(f"unknown scaling {mode!r}; choose one of {', '.join(SCALINGS)}")
    if mode == "none":
        return v.detach().to(torch.float32).clone()
    norm = float(v.double().norm())
    if not np.isfinite(norm) or norm == 0.0:
        raise VulnsteerError(f"cannot rescale a direction of norm {norm}")
    if mode == "unit":
        return (v.double() / norm).float()
    if reference_norm is None or not reference_norm > 0:
        raise VulnsteerError(f"scaling 'mean_norm' needs a positive reference_norm, got {reference_norm!r}")
    return (v.double() * (reference_norm / norm)).float()


def mean_residual_norm(*acts: Tensor) -> float:
    """Mean L2 norm of the rows of the given [n, d] residual tensors taken together."""
    rows = torch.cat([a.detach().double().reshape(-1, a.shape[-1]) for a in acts])
    return float(rows.norm(dim=-1).mean())


def training_means(
    acts_pos: Tensor, acts_neg: Tensor, layers: Iterable[int], embeddings_first: bool = False
) -> dict[int, Tensor]:
    """Per layer, the midpoint of the two class means (the centre the amplification operator projects from).

    The midpoint rather than the pooled mean, so that class imbalance does not move the centre towards
    the larger class.
    """
    _check_3d(acts_pos, acts_neg)
    if embeddings_first:
        acts_pos, acts_neg = acts_pos[:, 1:], acts_neg[:, 1:]
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


def build_vectors(
    acts_pos: Tensor,
    acts_neg: Tensor,
    method: str,
    layers: Iterable[int],
    *,
    paired: bool = True,
    scaling: Scaling = "none",
    reference_norms: dict[int, float] | None = None,
    probe_C: float = 1.0,
    embeddings_first: bool = False,
) -> dict[int, Tensor]:
    """One direction per layer from [n, L, d] vulnerable (pos) and secure (neg) residuals.

    "caa" honours `paired`; "pca" always pairs row i of pos with row i of neg; "probe" fits on all
    rows (pos labelled 1). For "mean_norm" scaling the reference per layer is `reference_norms[layer]`
    or, by default, the mean residual norm of pos and neg at that layer.
    """
    if method not in METHODS:
        raise VulnsteerError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if scaling not in SCALINGS:
        raise VulnsteerError(f"unknown scaling {scaling!r}; choose one of {', '.join(SCALINGS)}")
    _check_3d(acts_pos, acts_neg)
    if embeddings_first:
        acts_pos, acts_neg = acts_pos[:, 1:], acts_neg[:, 1:]
    out: dict[int, Tensor] = {}
    for layer in _checked_layers(layers, acts_pos.shape[1]):
        pos, neg = acts_pos[:, layer], acts_neg[:, layer]
        if method == "caa":
            v = caa_direction(pos, neg, paired=paired)
        elif method == "pca":
            v = pca_direction(pos, neg)
        else:
            x = torch.cat([pos, neg])
            y = torch.cat([torch.ones(len(pos), dtype=torch.long), torch.zeros(len(neg), dtype=torch.long)])
            v = probe_direction(x, y, C=probe_C)
        ref = None
        if scaling == "mean_norm":
            ref = reference_norms[layer] if reference_norms is not None else mean_residual_norm(pos, neg)
        out[layer] = scale(v, scaling, ref)
    return out


@dataclass
class BuiltVectors:
    """Directions for one CWE (or the pool): what `SteeringVector` needs besides provenance."""

    cwe: str
    directions: dict[int, Tensor]
    mu: dict[int, Tensor]
    record_ids: list[str]  # every record whose residuals went into the directions, sorted
    n_vulnerable: int
    n_secure: int
    n_pairs: int  # 0 for unpaired methods


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


def _build_one(
    acts: Tensor, records: Sequence[Record], idx: list[int], cwe: str, method: str, layers: list[int],
    paired: bool, scaling: Scaling, probe_C: float, min_per_class: int,
) -> BuiltVectors | None:
    subset = [records[i] for i in idx]
    uses_pairs = method == "pca" or (method == "caa" and paired)
    if uses_pairs:
        pairs = [(idx[v], idx[s]) for v, s in pair_indices(subset)]
        vul = sorted({v for v, _ in pairs})
        sec = sorted({s for _, s in pairs})
        pos, neg = acts[[v for v, _ in pairs]], acts[[s for _, s in pairs]]
        enough, have = len(pairs) >= min_per_class, f"{len(pairs)} pairs"
    else:
        vul = [i for i in idx if records[i].is_vulnerable]
        sec = [i for i in idx if not records[i].is_vulnerable]
        pos, neg = acts[vul], acts[sec]
        enough, have = min(len(vul), len(sec)) >= min_per_class, f"{len(vul)} vulnerable / {len(sec)} secure"
    if not enough:
        if cwe == POOLED:
            raise DataError(f"only {have} in the training records; need at least {min_per_class} (per class or pairs)")
        warnings.warn(f"{cwe}: only {have} for {method}, need {min_per_class}; no vector for this CWE", stacklevel=3)
        return None
    # Reference norms and mu from the distinct records, not the pair expansion (which may repeat some).
    ref = {layer: mean_residual_norm(acts[vul, layer], acts[sec, layer]) for layer in layers}
    directions = build_vectors(
        pos, neg, method, layers, paired=paired, scaling=scaling, reference_norms=ref, probe_C=probe_C
    )
    return BuiltVectors(
        cwe=cwe,
        directions=directions,
        mu=training_means(acts[vul], acts[sec], layers),
        record_ids=sorted(records[i].id for i in vul + sec),
        n_vulnerable=len(vul),
        n_secure=len(sec),
        n_pairs=len(pairs) if uses_pairs else 0,
    )


def build_per_cwe(
    acts: Tensor,
    records: Sequence[Record],
    method: str,
    layers: Iterable[int],
    *,
    paired: bool = True,
    scaling: Scaling = "none",
    probe_C: float = 1.0,
    min_per_class: int = 2,
    progress: bool = True,
    embeddings_first: bool = False,
) -> dict[str, BuiltVectors]:
    """Directions for the pool of all records ("pooled") and for each CWE, from [n, L, d] residuals.

    `acts[i]` belongs to `records[i]` (layout as in the module docstring). Paired methods (pca, caa with paired=True) use only records
    that have a counterpart (see `pair_indices`). A CWE with fewer than `min_per_class` pairs (paired)
    or records of either label (unpaired) is skipped with a warning; too few in the pool is an error.
    """
    if acts.ndim != 3 or acts.shape[0] != len(records):
        raise DataError(f"acts must be [n_records, L, d] with n_records={len(records)}, got shape {tuple(acts.shape)}")
    if method not in METHODS:
        raise VulnsteerError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if scaling not in SCALINGS:
        raise VulnsteerError(f"unknown scaling {scaling!r}; choose one of {', '.join(SCALINGS)}")
    if embeddings_first:
        acts = acts[:, 1:]
    layer_list = _checked_layers(layers, acts.shape[1])
    by_cwe: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        by_cwe[rec.cwe].append(i)
    jobs = [(POOLED, list(range(len(records))))] + [(c, by_cwe[c]) for c in sorted(by_cwe, key=_cwe_key)]
    out: dict[str, BuiltVectors] = {}
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(f"{method} directions", total=len(jobs))
        for cwe, idx in jobs:
            built = _build_one(acts, records, idx, cwe, method, layer_list, paired, scaling, probe_C, min_per_class)
            if built is not None:
                out[cwe] = built
            bar.advance(task)
    return out


def _cwe_key(cwe: str) -> tuple[int, str]:
    digits = cwe.removeprefix("CWE-")
    return (int(digits), cwe) if digits.isdigit() else (1 << 30, cwe)
