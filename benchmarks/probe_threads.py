"""The probe fit's time with one BLAS thread against the machine's default, measured in one run.

    python benchmarks/probe_threads.py [--n 832] [--d 896] [--fits 5] [--activations DIR]

One fit is what the probe curve repeats per layer and fold: standardise, then lbfgs logistic regression
(`vulnsteer.evaluation.probes`), on n rows of d features with labels that separate them (n < d, as on a
SVEN cell), so lbfgs runs to its iteration cap. `--activations` reads the rows from a vulnsteer activation
cache (its "answer" readout at layer 12) instead of drawing them: heavy-tailed residuals, like the real ones.
Prints seconds per fit under each BLAS thread count and their ratio; `evaluation/probes.py` fits on one.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from threadpoolctl import threadpool_info, threadpool_limits

from vulnsteer.evaluation.probes import _probe


def rows(args: argparse.Namespace) -> np.ndarray:
    if args.activations is None:
        rng = np.random.default_rng(0)
        scale = np.exp(rng.normal(0, 1.5, args.d))  # residual dimensions differ in scale by orders of magnitude
        return rng.standard_t(3, (args.n, args.d)) * scale
    files = sorted(Path(args.activations).rglob("*.safetensors"))[: args.n]
    if not files:
        raise SystemExit(f"no .safetensors files under {args.activations}; pass an activation cache folder")
    return np.stack([load_file(str(f))["answer"][12] for f in files]).astype(np.float64)


def seconds_per_fit(X: np.ndarray, y: np.ndarray, fits: int) -> float:
    start = time.perf_counter()
    for i in range(fits):
        _probe(1.0, i).fit(X, y)
    return (time.perf_counter() - start) / fits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=832)
    ap.add_argument("--d", type=int, default=896)
    ap.add_argument("--fits", type=int, default=5)
    ap.add_argument("--activations", default=None)
    args = ap.parse_args()
    X = rows(args)
    y = np.random.default_rng(1).integers(0, 2, len(X))  # n < d: separable, lbfgs runs to its cap
    default = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    warnings.simplefilter("ignore")
    with threadpool_limits(default, user_api="blas"):
        many = seconds_per_fit(X, y, args.fits)
    with threadpool_limits(1, user_api="blas"):
        one = seconds_per_fit(X, y, args.fits)
    print(f"probe fit on [{X.shape[0]}, {X.shape[1]}], {args.fits} fits each")
    print(f"| BLAS threads | s per fit |\n|---|---|\n| {default} (default) | {many:.3f} |\n| 1 | {one:.3f} |")
    print(f"one thread is {many / one:.1f}x faster")


if __name__ == "__main__":
    main()
