"""Fit one `SteeringVector` per method from one training set of residuals, with what the operators need.

Every layer of a vector stores the unit direction `u` plus the training centre `mu` and three scales: the
spread `sigma` of the training projections onto `u`, the mean residual norm at that layer, and the norm of
the direction as the method built it. An additive strength is a multiple of one of these (`StrengthUnit`);
sigma, the default, means the same thing for CAA, PCA and probe directions and at every layer, where raw
CAA norms grow with depth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from vulnsteer.activations.layers import block_output, block_outputs
from vulnsteer.data.records import Record
from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Method, Readout, StrengthUnit
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.methods import AGGREGATORS, mean_residual_norm, pair_indices, training_means
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector

POOLED = "pooled"


def dataset_hash(records: Sequence[Record]) -> str:
    """SHA-256 over the sorted code hashes of the records a vector was fit on (order-free provenance)."""
    return hashlib.sha256("".join(sorted(r.sha256 for r in records)).encode()).hexdigest()


def fit_vectors(
    residuals: torch.Tensor,
    records: Sequence[Record],
    layers: Sequence[int],
    methods: Sequence[Method | str],
    cwe: str = POOLED,
    position: Readout = Readout.ANSWER,
) -> dict[Method, SteeringVector]:
    """One vector per method over `layers`, from `residuals` [n, n_layers + 1, d] (activations.layers) read at
    the readout named by `position` (answer, code-mean or code-last; recorded in the vector).

    Paired methods (CAA, PCA) use the records' vulnerable/secure pairs; the probe uses every record.
    """
    chosen = [Method(m) for m in methods]
    pairs = pair_indices(records)
    if not pairs and any(AGGREGATORS[m].paired for m in chosen):
        raise VulnsteerError("CAA and PCA need vulnerable/secure pairs in the training records")
    vi = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    si = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    labels = torch.tensor([r.label for r in records])
    outputs = block_outputs(residuals)
    mus = training_means(outputs[labels == 1], outputs[labels == 0], layers)
    stats: dict[Method, dict[str, dict]] = {m: {k: {} for k in ("u", "mu", "raw", "sigma", "mean")} for m in chosen}
    for layer in layers:
        x = block_output(residuals, layer).float()
        mu = mus[layer].float()
        for method in chosen:
            agg = AGGREGATORS[method]
            v = agg.fn(x[vi], x[si]) if agg.paired else agg.fn(x[labels == 1], x[labels == 0])
            norm = float(v.norm())
            u = v / norm
            s = stats[method]
            s["u"][layer], s["mu"][layer], s["raw"][layer] = u, mu, norm
            s["sigma"][layer] = float(((x - mu) @ u).std())
            s["mean"][layer] = mean_residual_norm(x)
    ids, digest = tuple(sorted(r.id for r in records)), dataset_hash(records)
    return {
        m: SteeringVector(
            Directions(s["u"], mu=s["mu"], raw_norm=s["raw"], sigma=s["sigma"], mean_norm=s["mean"]),
            Application(unit=StrengthUnit.SIGMA),
            Provenance(method=m.value, position=position, cwe=cwe, record_ids=ids, dataset_hash=digest,
                       extra={"n_records": len(records)}),
        )
        for m, s in stats.items()
    }


def fit_per_cwe(
    residuals: torch.Tensor,
    records: Sequence[Record],
    layers: Sequence[int],
    methods: Sequence[Method | str],
    min_pairs: int = 2,
    position: Readout = Readout.ANSWER,
) -> dict[str, dict[Method, SteeringVector]]:
    """Vectors pooled over CWEs ("pooled") and for each CWE with at least `min_pairs` training pairs.

    A CWE below the threshold gets no entry: callers fall back to the pooled vector for it.
    """
    out = {POOLED: fit_vectors(residuals, records, layers, methods, position=position)}
    for cwe in sorted({r.cwe for r in records}):
        idx = [i for i, r in enumerate(records) if r.cwe == cwe]
        sub = [records[i] for i in idx]
        if len(pair_indices(sub)) >= min_pairs:
            out[cwe] = fit_vectors(residuals[idx], sub, layers, methods, cwe=cwe, position=position)
    return out


def random_like(vector: SteeringVector, generator: torch.Generator) -> SteeringVector:
    """A control: uniformly random unit directions with the same layers, centres, scales and settings."""
    d, p = vector.directions, vector.provenance
    units = {}
    for layer, u in d.items():
        r = torch.randn(u.shape, generator=generator)
        units[layer] = r / r.norm()
    return SteeringVector(
        Directions(units, mu=d.mu, raw_norm=d.raw_norm, sigma=d.sigma, mean_norm=d.mean_norm),
        vector.application,
        Provenance(method="random", position=p.position, cwe=p.cwe, extra={"random_like": p.method}),
    )
