"""One condition's predictions as columns (`Predictions`), and its metrics per CWE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vulnsteer.activations.scoring import verdict
from vulnsteer.errors import DataError
from vulnsteer.evaluation.metrics import MetricWithCI, metrics_with_ci


@dataclass(frozen=True)
class Predictions:
    """One condition's predictions as columns: what every metric function reads, built once per condition.

    `verdicts` default to the scores' own (yes when the score favours yes); pass them for a reading that
    has its own verdicts (parsed generations) and NaN scores.
    """

    labels: tuple[int, ...]
    scores: tuple[float, ...]
    verdicts: tuple[str, ...]
    pair_ids: tuple[str | None, ...]
    groups: tuple[str, ...]
    cwes: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.labels)
        for name in ("scores", "verdicts", "pair_ids", "groups", "cwes"):
            if len(getattr(self, name)) != n:
                raise DataError(f"predictions: {name} has {len(getattr(self, name))} entries for {n} labels")

    @classmethod
    def of(
        cls,
        labels: Sequence[int],
        scores: Sequence[float],
        pair_ids: Sequence[str | None],
        groups: Sequence[str],
        cwes: Sequence[str],
        verdicts: Sequence[str] | None = None,
    ) -> Predictions:
        scores = tuple(float(x) for x in scores)
        return cls(tuple(int(x) for x in labels), scores,
                   tuple(verdicts) if verdicts is not None else tuple(verdict(x) for x in scores),
                   tuple(pair_ids), tuple(groups), tuple(cwes))

    def with_scores(self, scores: Sequence[float], verdicts: Sequence[str] | None = None) -> Predictions:
        """The same samples under another condition."""
        return Predictions.of(self.labels, scores, self.pair_ids, self.groups, self.cwes, verdicts)


def per_cwe(p: Predictions, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, dict[str, MetricWithCI]]:
    """`metrics_with_ci` for each CWE (sorted) and for "all" samples."""
    c = np.asarray(list(p.cwes), dtype=str)
    cols = {
        "labels": np.asarray(p.labels),
        "scores": np.asarray(p.scores, dtype=float),
        "verdicts": np.asarray(list(p.verdicts), dtype=object),
        "pair_ids": np.asarray(list(p.pair_ids), dtype=object),
        "groups": np.asarray(list(p.groups), dtype=object),
    }
    out = {}
    for name in [*sorted(set(c.tolist())), "all"]:
        mask = np.ones(len(c), dtype=bool) if name == "all" else c == name
        sub = {k: v[mask].tolist() for k, v in cols.items()}
        out[name] = metrics_with_ci(**sub, n_boot=n_boot, seed=seed, alpha=alpha)
    return out
