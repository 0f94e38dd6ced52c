"""How much of the configuration grid a fold's validation sweep scores (`SteerConfig.search`).

`grid` scores every layer x method x (operator, strength): 936 configurations per validation sample on a
24-block model, hours at SVEN scale. `coarse-fine` bounds that in two stages, each over the same validation
samples:

1. coarse: every layer x method at the reference settings of `coarse_settings`: `add` at one strength per sign
   (the upper median magnitude of that sign's strengths: 16 sigma of 4..32; both signs, as which way helps is
   measured, not assumed), `amplify` at the upper median of its strengths (16 of -1, 4, 16, 64) and `ablate`,
   which has no strength;
2. fine: every (operator, strength) at the `search_top` (layer, method) pairs whose best coarse configuration
   ranks highest on validation, by the rule that makes the final choice (ties: lower layer, then method order).

The fold's choice is then made by that same rule over every configuration scored, so where the grid's best
configuration sits at a pair the coarse stage ranks among the top, both searches choose it.
`search_subsample` scores only a seeded, class-balanced subset of each fold's validation samples, under either
search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vulnsteer.activations.scoring import verdict
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.experiments.config import SteerConfig
from vulnsteer.options import Method, Operator, SearchMode

Config = tuple[int, Method, Operator, float]  # layer, method, operator, strength


def val_rank(metrics: dict[str, float], alpha: float, select: str) -> tuple:
    """What a configuration is chosen by: the selection metric, then AUROC, then the weaker strength."""
    nan_low = lambda x: -1.0 if x != x else x  # noqa: E731 - NaN never wins
    return (nan_low(metrics[select]), nan_low(metrics["auroc"]), -abs(alpha))


def config_metrics(sweep: Sequence[dict], fold: int, labels: Sequence[int], pair_ids: Sequence[str | None],
                   val: np.ndarray, cfg: SteerConfig, operator: Operator | None = None) -> dict[tuple, dict[str, float]]:
    """Validation metrics of every configuration `fold` scored (of one `operator`'s when given), keyed
    (layer, method, operator, strength) as the sweep's rows write them, in grid order whatever order they
    were scored in (so ties break alike under every search)."""
    by_config: dict[tuple, dict[int, float]] = {}
    for row in sweep:
        if row["fold"] == fold and (operator is None or row["operator"] == operator.value):
            key = (row["layer"], row["method"], row["operator"], row["alpha"])
            by_config.setdefault(key, {})[row["index"]] = row["score"]
    methods = {m.value: k for k, m in enumerate(cfg.methods)}
    settings = {(op.value, a): k for k, (op, a) in enumerate(cfg.settings())}
    grid_order = lambda k: (k[0], methods.get(k[1], len(methods)), settings.get((k[2], k[3]), len(settings)))  # noqa: E731
    out = {}
    for key in sorted(by_config, key=grid_order):
        scores = by_config[key]
        idx = [int(i) for i in val if i in scores]
        s = [scores[i] for i in idx]
        out[key] = detection_metrics([labels[i] for i in idx], s, [verdict(x) for x in s], [pair_ids[i] for i in idx])
    return out


def coarse_settings(cfg: SteerConfig) -> list[tuple[Operator, float]]:
    """The settings the coarse stage scores at every layer and method (see the module docstring), in the
    order of `cfg.settings()`."""
    adds = [a for op, a in cfg.settings() if op is Operator.ADD]
    amplifies = sorted(a for op, a in cfg.settings() if op is Operator.AMPLIFY)
    keep: set[tuple[Operator, float]] = set()
    for side in ([a for a in adds if a < 0], [a for a in adds if a >= 0]):
        if side:
            keep.add((Operator.ADD, sorted(side, key=abs)[len(side) // 2]))
    if amplifies:
        keep.add((Operator.AMPLIFY, amplifies[len(amplifies) // 2]))
    return [(op, a) for op, a in cfg.settings() if op is Operator.ABLATE or (op, a) in keep]


def first_configs(cfg: SteerConfig, layers: Sequence[int]) -> list[Config]:
    """What the sweep scores first: the whole grid, or the coarse stage."""
    settings = cfg.settings() if cfg.search is SearchMode.GRID else coarse_settings(cfg)
    return [(layer, m, op, a) for layer in layers for m in cfg.methods for op, a in settings]


def fine_configs(cfg: SteerConfig, layers: Sequence[int], scored: dict[tuple, dict[str, float]]) -> list[Config]:
    """The fine stage: every setting not yet scored at the `search_top` best (layer, method) pairs of the
    coarse stage's validation metrics `scored` (config_metrics)."""
    best: dict[tuple[int, Method], tuple] = {}
    for (layer, method, _, alpha), m in scored.items():  # grid order: a tie keeps the lower layer, earlier method
        rank = val_rank(m, alpha, cfg.select)
        pair = (layer, Method(method))
        if pair not in best or rank > best[pair]:
            best[pair] = rank
    top = sorted(best, key=lambda p: best[p], reverse=True)[:cfg.search_top]  # sorted is stable
    return [(layer, m, op, a) for layer in layers for m in cfg.methods if (layer, m) in top
            for op, a in cfg.settings() if (layer, m.value, op.value, a) not in scored]


def search_fold(cfg: SteerConfig, layers: Sequence[int], sweep: Callable[[list[Config]], list[dict]],
                metrics: Callable[[list[dict]], dict[tuple, dict[str, float]]]) -> list[dict]:
    """A fold's sweep rows under `cfg.search`: `sweep` scores configurations on the fold's validation samples
    (one row per sample and configuration), `metrics` gives the rows' validation metrics (config_metrics)."""
    rows = sweep(first_configs(cfg, layers))
    if cfg.search is SearchMode.COARSE_FINE:
        rows += sweep(fine_configs(cfg, layers, metrics(rows)))
    return rows


def n_stages(cfg: SteerConfig) -> int:
    """Passes the sweep makes over each fold's validation samples."""
    return 1 if cfg.search is SearchMode.GRID else 2


def scored_validation(val: np.ndarray, labels: Sequence[int], cfg: SteerConfig, fold: int) -> np.ndarray:
    """The validation samples the sweep scores: all of them, or `search_subsample` drawn with (seed, fold), half
    of each class where both have enough (the other class fills in), in the fold's order."""
    n = cfg.search_subsample
    if n is None or n >= len(val):
        return val
    rng = np.random.default_rng([cfg.seed, fold])
    y = np.array([labels[int(i)] for i in val])
    neg, pos = (rng.permutation(val[y == c]) for c in (0, 1))
    n_neg = min(len(neg), max(n // 2, n - len(pos)))
    keep = {int(i) for i in (*neg[:n_neg], *pos[:n - n_neg])}
    return np.array([i for i in val if int(i) in keep], dtype=val.dtype)
