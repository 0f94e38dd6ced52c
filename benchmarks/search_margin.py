"""How far the cheaper configuration searches of the steering sweep fall short of the exhaustive grid, per fold.

    PYTHONPATH=src python3 benchmarks/search_margin.py [--model qwen2.5-coder-0.5b] [--subset hand-crafted]
                                                        [--top 3] [--subsample N]

Runs the steering experiment (run_steering, cross-fitted, the run's defaults otherwise: every block, 3 methods,
13 settings, answer scope and readout) on the same samples under --search grid, then coarse-fine (--top
pairs refined), then, with --subsample, coarse-fine on N validation samples per fold. Every search fits the
same vectors on the same folds, so the grid's sweep holds every configuration's score on the whole validation
fold: a cheaper search's choice is judged there. Prints per fold the grid's best validation score (the
selection metric, balanced accuracy), the cheaper search's choice and its score on the whole validation fold,
the gap, the configurations scored per validation sample and each search's wall time (run_steering: sweep,
choice and test scoring, which costs the same under every search).
"""

from __future__ import annotations

import argparse
import time

from vulnsteer.activations.scoring import verdict
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.experiments.config import SteerConfig
from vulnsteer.experiments.context import open_context
from vulnsteer.experiments.samples import build_samples, run_samples
from vulnsteer.experiments.steer import SteerResult, run_steering
from vulnsteer.options import SearchMode


def full_val_score(grid: SteerResult, fold: int, key: tuple, labels: list[int], val: list[int], select: str) -> float:
    """A configuration's selection metric on the whole validation fold, from the grid's sweep."""
    s = {r["index"]: r["score"] for r in grid.sweep
         if r["fold"] == fold and (r["layer"], r["method"], r["operator"], r["alpha"]) == key}
    scores = [s[i] for i in val]
    return detection_metrics([labels[i] for i in val], scores, [verdict(x) for x in scores])[select]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--subset", default="hand-crafted")
    ap.add_argument("--top", type=int, default=SteerConfig().search_top)
    ap.add_argument("--subsample", type=int, default=None)
    args = ap.parse_args()

    ctx = open_context(args.model, None, None, [args.subset])
    main_set = run_samples(build_samples(ctx.records, ctx.loaded, "S1", ctx.cwe_names, ctx.data_root),
                           ctx.loaded, ctx.words, ctx.cache, keep_states=True)
    labels = main_set.labels.tolist()
    searches = {"grid": SteerConfig(),
                f"coarse-fine top {args.top}": SteerConfig(search=SearchMode.COARSE_FINE, search_top=args.top)}
    if args.subsample is not None:
        searches[f"coarse-fine top {args.top}, {args.subsample} val/fold"] = SteerConfig(
            search=SearchMode.COARSE_FINE, search_top=args.top, search_subsample=args.subsample)
    results, seconds = {}, {}
    for name, cfg in searches.items():
        t0 = time.perf_counter()
        results[name] = run_steering(ctx.loaded.parts, main_set, ctx.words, cfg, model=ctx.loaded.model)
        seconds[name] = time.perf_counter() - t0
    grid, select = results["grid"], SteerConfig().select
    print(f"model {ctx.loaded.model_id}, {args.subset}: {len(main_set.samples)} files, {len(grid.choices)} folds, "
          f"selection metric {select} on the validation fold")
    worst = {}
    for name, res in results.items():
        n_val = sum(len({r['index'] for r in res.sweep if r['fold'] == c.fold}) for c in res.choices)
        per_sample = len(res.sweep) / n_val
        print(f"\n{name}: {per_sample:.0f} configurations per validation sample, {len(res.sweep)} sweep rows, "
              f"run_steering {seconds[name]:.0f} s")
        gaps = []
        for c, g in zip(res.choices, grid.choices):
            val = [int(i) for i in grid.folds.split(c.fold)[1]]
            best = g.val_metrics[select]
            got = full_val_score(grid, c.fold, (c.layer, c.method.value, c.operator.value, c.alpha), labels, val, select)
            gaps.append(best - got)
            print(f"  fold {c.fold}: grid best {g.label()} {best:.4f}; chosen {c.label()} {got:.4f}; "
                  f"gap {best - got:.4f}")
        worst[name] = max(gaps)
    print("\nlargest per-fold gap (the margin): " + "; ".join(f"{n}: {w:.4f}" for n, w in worst.items()))


if __name__ == "__main__":
    main()
