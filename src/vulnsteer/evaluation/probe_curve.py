"""The per-layer probe curve: grouped k-fold probes at every block's output with a shuffled-label control, on
residuals of records (what `vulnsteer probe` and `vulnsteer.probe_layers` compute)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vulnsteer.activations.layers import block_outputs
from vulnsteer.data.records import Record
from vulnsteer.evaluation.probes import ProbeResult, layer_probes, shuffled_control


@dataclass
class ProbeCurve:
    result: ProbeResult  # per-layer out-of-fold AUROC/accuracy (layer k = output of block k)
    control: np.ndarray  # [repeats, n_layers] AUROC with shuffled labels
    k: int = 0  # grouped CV folds (0: not cross-validated, a transfer curve)


PROBE_FOLDS = 5  # the probe curve's grouped CV folds; fewer where the data has fewer scenario groups


def probe_folds(n_groups: int) -> int:
    """The probe curve's k: PROBE_FOLDS, or every group as its own fold where there are fewer (at least 2)."""
    return min(PROBE_FOLDS, n_groups)


def probe_curve_of(residuals: torch.Tensor, records: Sequence[Record], k: int | None = None, seed: int = 0,
                   repeats: int = 3) -> ProbeCurve:
    """`probe_curve` on residuals [n, n_layers + 1, d] of `records` (their labels, groups and CWEs)."""
    X = block_outputs(residuals).numpy()
    y = np.array([r.label for r in records])
    groups = [r.group for r in records]
    k = probe_folds(len(set(groups))) if k is None else k
    cwes = [r.cwe for r in records]
    result = layer_probes(X, y, groups, k=k, seed=seed, cwes=cwes, progress=True)
    control = shuffled_control(X, y, groups, k=k, seed=seed + 1, n_repeats=repeats, progress=True)
    return ProbeCurve(result=result, control=control, k=k)
