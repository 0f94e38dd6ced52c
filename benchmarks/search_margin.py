"""How far the cheaper configuration searches of the steering sweep fall short of the exhaustive grid, per fold.

    PYTHONPATH=src python3 benchmarks/search_margin.py [--model qwen2.5-coder-0.5b] [--subset hand-crafted]
                                                        [--tops 1,2,3,5] [--subsample 6] [--time-coarse-fine]

Runs the steering experiment (run_steering, cross-fitted, the defaults otherwise: every block, 3 methods,
13 settings, answer scope and readout) once under --search grid. Every search fits the same vectors on the
same folds and scores a configuration the same way, so the grid's sweep holds the score any cheaper search
would get: each cheaper search (coarse-fine at each --tops; with --subsample, grid and coarse-fine on that
many validation samples per fold) is replayed on the grid's rows by the package's own search and choice
code (search_fold, _choose), and its choice judged by its balanced accuracy on the whole validation fold.
Prints per fold the grid's best, each search's choice and the gap, and per search the configurations scored
per validation sample. --time-coarse-fine also runs coarse-fine for real and prints both wall times
(run_steering: sweep, choice and test scoring; the test scoring costs the same under every search).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

from vulnsteer.activations.scoring import verdict
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.experiments.config import SteerConfig
from vulnsteer.experiments.search import config_metrics, scored_validation, search_fold
from vulnsteer.experiments.steer import _choose, run_steering
from vulnsteer.options import Readout, SearchMode
from vulnsteer.progress import log
from vulnsteer.prompting.context import open_context
from vulnsteer.prompting.samples import build_samples, run_samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--subset", default="hand-crafted")
    ap.add_argument("--tops", default="1,2,3,5")
    ap.add_argument("--subsample", type=int, default=None)
    ap.add_argument("--time-coarse-fine", action="store_true")
    args = ap.parse_args()

    ctx = open_context(args.model, None, None, [args.subset])
    samples = run_samples(build_samples(ctx.records, ctx.loaded, "S1", ctx.cwe_names, ctx.data_root),
                          ctx.loaded, ctx.words, ctx.cache, keep_states=True)
    labels, pair_ids = samples.labels.tolist(), [s.record.pair_id for s in samples.samples]
    t0 = time.perf_counter()
    grid_cfg = SteerConfig()
    grid = run_steering(ctx.loaded.parts, samples, ctx.words, grid_cfg, Readout.ANSWER, model=ctx.loaded.model)
    grid_s = time.perf_counter() - t0
    layers = grid_cfg.check_layers(ctx.loaded.parts.n_layers)
    row = {(r["fold"], r["index"], r["layer"], r["method"], r["operator"], r["alpha"]): r for r in grid.sweep}
    select = grid_cfg.select
    print(f"model {ctx.loaded.model_id}, {args.subset}: {len(samples.samples)} files, {len(grid.choices)} folds; "
          f"selection metric {select}; grid: run_steering {grid_s:.0f} s", flush=True)

    def whole_val(fold: int, key: tuple) -> float:
        """A configuration's selection metric on the whole validation fold, from the grid's sweep."""
        val = [int(i) for i in grid.folds.split(fold)[1]]
        s = [row[(fold, i, *key)]["score"] for i in val]
        return detection_metrics([labels[i] for i in val], s, [verdict(x) for x in s], [pair_ids[i] for i in val])[select]

    searches = {"grid": grid_cfg}
    for top in (int(t) for t in args.tops.split(",")):
        searches[f"coarse-fine top {top}"] = SteerConfig(search=SearchMode.COARSE_FINE, search_top=top)
    if args.subsample is not None:
        searches[f"grid, {args.subsample} val/fold"] = SteerConfig(search_subsample=args.subsample)
        searches[f"coarse-fine top 3, {args.subsample} val/fold"] = SteerConfig(
            search=SearchMode.COARSE_FINE, search_subsample=args.subsample)
    worst = {}
    for name, cfg in searches.items():
        gaps, n_rows, n_val = [], 0, 0
        print(f"\n{name}:")
        for f, (_, val, _) in enumerate(grid.folds):
            v = scored_validation(val, labels, cfg, f)
            lookup = lambda configs, f=f, v=v: [row[(f, int(i), layer, m.value, op.value, a)]  # noqa: E731
                                                for i in v for layer, m, op, a in configs]
            rows = search_fold(cfg, layers, lookup,
                               partial(config_metrics, fold=f, labels=labels, pair_ids=pair_ids, val=v, cfg=cfg))
            c, g = _choose(rows, f, samples, v, cfg), grid.choices[f]
            best, got = g.val_metrics[select], whole_val(f, (c.layer, c.method.value, c.operator.value, c.alpha))
            gaps.append(best - got)
            n_rows, n_val = n_rows + len(rows), n_val + len(v)
            print(f"  fold {f}: grid best {g.label()} {best:.4f}; chosen {c.label()} {got:.4f}; gap {best - got:.4f}")
        worst[name] = max(gaps)
        print(f"  {n_rows / n_val:.0f} configurations per scored validation sample, {n_rows} sweep rows", flush=True)
    print("\nlargest per-fold gap (the margin): " + "; ".join(f"{n}: {w:.4f}" for n, w in worst.items()), flush=True)
    if args.time_coarse_fine:
        log("timing coarse-fine top 3 for real")
        t0 = time.perf_counter()
        cf = run_steering(ctx.loaded.parts, samples, ctx.words, searches["coarse-fine top 3"], Readout.ANSWER,
                          model=ctx.loaded.model)
        print(f"coarse-fine top 3 for real: run_steering {time.perf_counter() - t0:.0f} s against grid {grid_s:.0f} s; "
              f"choices {[c.label() for c in cf.choices]}")


if __name__ == "__main__":
    main()
