"""Fidelity of each precision against float32 on the real default model; prints a markdown table.

    python benchmarks/precision.py [--model qwen2.5-coder-0.5b] [--prompts 48] [--precisions float32,bf16-mixed,bfloat16,int8]

On the hand-crafted SecLLMHolmes files under prompt S1, per precision against float32: per-file answer
score Spearman / Pearson / largest absolute difference, verdict agreement, baseline AUROC, the per-layer
probe AUROC curve (as `vulnsteer probe` computes it) and its largest difference from float32's, and the
scores of a 24-layer x 6-strength random-direction sweep (as benchmarks/bench.py runs it).

The bar a precision must pass to be the default (model/precision.py): answer-score Spearman >= 0.99,
verdicts agree on >= 95% of files, every probe-curve point within 0.02 AUROC of float32's. This script
measures fidelity only (no timings: those come from benchmarks/bench.py on a quiet machine).

int8 = int8 weights per channel and dynamic per-token int8 activations on every Linear layer, through
torchao (`pip install --no-deps torchao`); vulnsteer does not offer it (it failed the bar), so its
conversion lives here.
"""

from __future__ import annotations

import argparse
import gc
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score

from vulnsteer.evaluation.probes import layer_probes
from vulnsteer.model.loading import LoadedModel, default_cache_dir, load_model
from vulnsteer.model.precision import Precision, to_precision
from vulnsteer.options import StrengthUnit
from vulnsteer.prompting.context import open_context
from vulnsteer.prompting.samples import build_samples, run_samples
from vulnsteer.prompting.windows import pool_scores
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector

STRENGTHS = (-4.0, -2.0, -1.0, 1.0, 2.0, 4.0)
BAR_SPEARMAN, BAR_AGREEMENT, BAR_PROBE = 0.99, 0.95, 0.02


@dataclass
class Measured:
    labels: np.ndarray  # [n] 1 = vulnerable
    scores: np.ndarray  # [n] answer scores
    probe_auroc: np.ndarray  # [n_layers]
    sweep: np.ndarray  # [n, n_layers * len(STRENGTHS)]


def to_int8(loaded: LoadedModel) -> None:
    """int8 per-channel weights and dynamic per-token int8 activations on every Linear (torchao)."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(loaded.model, Int8DynamicActivationInt8WeightConfig())


def measure(loaded: LoadedModel, ctx, n: int) -> Measured:
    samples = build_samples(ctx.records, loaded, "S1", ctx.cwe_names, ctx.data_root)[:n]
    sset = run_samples(samples, loaded, ctx.words, cache=None, keep_states=True, description=f"{loaded.dtype} passes")
    parts = loaded.parts
    X = sset.residuals[:, 1:].numpy()
    groups = [s.record.group for s in sset.samples]
    cwes = [s.record.cwe for s in sset.samples]
    probes = layer_probes(X, sset.labels.numpy(), groups, k=5, seed=0, cwes=cwes)  # as `vulnsteer probe`
    g = torch.Generator().manual_seed(0)
    ivs = []
    for layer in range(parts.n_layers):  # the same random directions for every precision
        v = SteeringVector({layer: torch.randn(parts.d_model, generator=g)}, Application(unit=StrengthUnit.UNIT),
                           Provenance(method="random"))
        ivs += [iv for a in STRENGTHS for iv in v.interventions(a, "add")]
    # Each sample's windows steered alike and pooled, as the steering experiment scores them.
    sweep = torch.stack([pool_scores(torch.stack([score_interventions(parts, st, ivs, ctx.words) for st in states]))
                         for states in sset.states or []])
    return Measured(sset.labels.numpy(), sset.scores.numpy(), probes.auroc, sweep.numpy())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--precisions", default="float32,bf16-mixed,bfloat16,int8")
    args = ap.parse_args()

    ctx = open_context(args.model, None, None, ["hand-crafted"], dtype="float32")
    n = min(args.prompts, len(ctx.records))
    results: dict[str, Measured] = {}
    for name in args.precisions.split(","):
        if name == "float32":
            loaded = ctx.loaded
        else:
            loaded = load_model(args.model, cache_dir=default_cache_dir() / "models", dtype="float32")
            if name == "int8":
                try:
                    to_int8(loaded)
                except ImportError:
                    print("int8 skipped: torchao is not installed (pip install --no-deps torchao)")
                    continue
                loaded.dtype = "int8"  # not a Precision (int8 failed the fidelity bar): only a label for this pass
            else:
                to_precision(loaded.model, name)
                loaded.dtype = Precision(name)
        results[name] = measure(loaded, ctx, n)
        print(f"measured {name}", flush=True)
        if loaded is not ctx.loaded:
            del loaded
            gc.collect()
    print(table(results))
    for name, m in results.items():
        print(f"probe AUROC per layer, {name}: " + " ".join(f"{a:.3f}" for a in m.probe_auroc))


def table(results: dict[str, Measured]) -> str:
    ref = results["float32"]
    y = ref.labels.astype(int)
    rows = [
        "| precision | answer Spearman | answer Pearson | max abs diff | verdict agreement | baseline AUROC "
        "| probe AUROC max diff (best layer, AUROC) | sweep Spearman | sweep Pearson | sweep max diff | passes bar |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in results.items():
        rho = spearmanr(m.scores, ref.scores).statistic
        r = pearsonr(m.scores, ref.scores).statistic
        agree = float(np.mean((m.scores > 0) == (ref.scores > 0)))
        probe_diff = float(np.nanmax(np.abs(m.probe_auroc - ref.probe_auroc)))
        best = int(np.nanargmax(m.probe_auroc))
        s, t = m.sweep.ravel(), ref.sweep.ravel()
        ok = rho >= BAR_SPEARMAN and agree >= BAR_AGREEMENT and probe_diff <= BAR_PROBE
        rows.append(
            f"| {name} | {rho:.4f} | {r:.4f} | {np.max(np.abs(m.scores - ref.scores)):.3f} | {agree:.1%} "
            f"| {roc_auc_score(y, m.scores):.3f} | {probe_diff:.3f} ({best}, {m.probe_auroc[best]:.3f}) "
            f"| {spearmanr(s, t).statistic:.4f} | {pearsonr(s, t).statistic:.4f} | {np.max(np.abs(s - t)):.3f} "
            f"| {'yes' if ok else 'no'} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
