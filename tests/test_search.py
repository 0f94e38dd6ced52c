"""The cheaper configuration searches of the steering sweep, on planted grids whose optimum is known."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

from vulnsteer.experiments.config import SteerConfig
from vulnsteer.experiments.search import (
    coarse_settings,
    config_metrics,
    first_configs,
    scored_validation,
    search_fold,
    val_rank,
)
from vulnsteer.options import Method, Operator, SearchMode

LAYERS = list(range(6))
N = 20  # validation samples per class: balanced accuracy moves in steps of 1/20
LABELS = [0] * N + [1] * N
PAIRS: list[str | None] = [None] * (2 * N)
VAL = np.arange(2 * N)


def smooth(layer: int, method: Method, op: Operator, alpha: float) -> float:
    """A planted validation quality (the fraction of each class answered right): best at block 4, pca,
    add -32 (0.60); the runner-up configurations score 0.55."""
    base = 0.40 - 0.05 * abs(layer - 4) - (0.0 if method is Method.PCA else 0.10)
    if op is Operator.ADD:
        shape = 0.20 - 0.05 * abs(math.log2(abs(alpha)) - 5) if alpha < 0 else 0.0
    else:
        shape = 0.05 if op is Operator.AMPLIFY else 0.02
    return base + shape


def needle(layer: int, method: Method, op: Operator, alpha: float) -> float:
    """A planted grid the coarse stage cannot see into: its optimum is one strength the coarse stage skips,
    at a pair whose reference strengths are poor."""
    if (layer, method, op, alpha) == (1, Method.CAA, Operator.ADD, 4.0):
        return 0.9
    return 0.1 if (layer, method) == (1, Method.CAA) else smooth(layer, method, op, alpha)


def planted_sweep(quality, fold: int, configs: list) -> list[dict]:
    """Sweep rows whose validation balanced accuracy under each configuration is quality(config): the sample
    of rank j in its class is answered right exactly when (j + 0.5) / N < quality."""
    rows = []
    for i in VAL:
        u = ((int(i) % N) + 0.5) / N
        for layer, m, op, a in configs:
            q = quality(layer, m, op, a)
            rows.append(dict(fold=fold, index=int(i), layer=layer, method=m.value, operator=op.value, alpha=a,
                             score=(q - u) if LABELS[i] else (u - q)))
    return rows


def search(quality, cfg: SteerConfig) -> tuple[tuple, list[dict]]:
    """The configuration the fold chooses after `cfg.search`, and the rows it scored."""
    rows = search_fold(cfg, LAYERS, partial(planted_sweep, quality, 0),
                       partial(config_metrics, fold=0, labels=LABELS, pair_ids=PAIRS, val=VAL, cfg=cfg))
    metrics = config_metrics(rows, 0, LABELS, PAIRS, VAL, cfg)
    return max(metrics, key=lambda k: val_rank(metrics[k], k[3], cfg.select)), rows


def n_configs(rows: list[dict]) -> int:
    return len({(r["layer"], r["method"], r["operator"], r["alpha"]) for r in rows})


def test_coarse_fine_finds_the_planted_optimum_scoring_what_the_design_says():
    grid = SteerConfig()
    fine = SteerConfig(search=SearchMode.COARSE_FINE, search_top=1)
    (best, grid_rows), (found, fine_rows) = search(smooth, grid), search(smooth, fine)
    assert best == found == (4, "pca", "add", -32.0)
    n_settings, n_coarse = len(grid.settings()), len(coarse_settings(grid))
    assert n_configs(grid_rows) == len(grid_rows) // len(VAL) == len(LAYERS) * 3 * n_settings  # each once
    assert n_configs(fine_rows) == len(fine_rows) // len(VAL) == len(LAYERS) * 3 * n_coarse + (n_settings - n_coarse)
    assert n_configs(fine_rows) < n_configs(grid_rows) / 2


def test_coarse_fine_misses_an_optimum_the_coarse_stage_cannot_see_and_grid_does_not():
    best, _ = search(needle, SteerConfig())
    assert best == (1, "caa", "add", 4.0)
    found, _ = search(needle, SteerConfig(search=SearchMode.COARSE_FINE, search_top=3))
    assert found == (4, "pca", "add", -32.0)  # the best the coarse stage leads to, not the needle


def test_grid_scores_every_configuration_in_the_grid_order():
    cfg = SteerConfig(layers=(0, 2))
    assert first_configs(cfg, [0, 2]) == [(layer, m, op, a) for layer in (0, 2) for m in cfg.methods
                                          for op, a in cfg.settings()]


def test_ties_break_alike_whatever_order_configurations_were_scored_in():
    cfg = SteerConfig(layers=(0, 1), methods=(Method.CAA,))
    flat = lambda *_: 0.5  # noqa: E731 - every configuration ties on the metric
    rows = planted_sweep(flat, 0, first_configs(cfg, [0, 1]))
    forward = config_metrics(rows, 0, LABELS, PAIRS, VAL, cfg)
    backward = config_metrics(rows[::-1], 0, LABELS, PAIRS, VAL, cfg)
    assert list(forward) == list(backward)


def test_coarse_settings_take_one_strength_per_add_sign_one_amplify_and_ablate():
    assert coarse_settings(SteerConfig()) == [(Operator.ADD, -16.0), (Operator.ADD, 16.0), (Operator.AMPLIFY, 16.0),
                                              (Operator.ABLATE, 0.0)]
    assert coarse_settings(SteerConfig(scope="code")) == [(Operator.ADD, -16.0), (Operator.ADD, 16.0),
                                                          (Operator.AMPLIFY, 4.0), (Operator.ABLATE, 0.0)]
    assert coarse_settings(SteerConfig(add_alphas=(2.0, 8.0), amplify_alphas=(), ablate=False)) == [(Operator.ADD, 8.0)]


def test_validation_subsample_is_seeded_class_balanced_and_in_fold_order():
    labels = [0] * 30 + [1] * 6
    val = np.arange(0, 36, 1)
    cfg = SteerConfig(search_subsample=10)
    got = scored_validation(val, labels, cfg, fold=2)
    assert len(got) == 10 and list(got) == sorted(got) and set(got) <= set(val)
    assert sum(labels[i] for i in got) == 5
    assert np.array_equal(got, scored_validation(val, labels, cfg, fold=2))
    assert not np.array_equal(got, scored_validation(val, labels, cfg, fold=3))
    short = scored_validation(val, labels, SteerConfig(search_subsample=20), fold=0)
    assert sum(labels[i] for i in short) == 6 and len(short) == 20  # the short class gives all it has
    assert scored_validation(val, labels, SteerConfig(), fold=0) is val


@pytest.mark.parametrize("kwargs", [dict(search="exhaustive"), dict(search_top=0), dict(search_subsample=3)])
def test_bad_search_options_are_refused_in_one_line(kwargs):
    from vulnsteer.errors import VulnsteerError

    with pytest.raises(VulnsteerError) as exc:
        SteerConfig(**kwargs)
    assert "\n" not in str(exc.value)
