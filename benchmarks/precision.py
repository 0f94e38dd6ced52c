"""Fidelity of each precision against float32 on the real default model; prints a markdown table.

    python benchmarks/precision.py [--model qwen2.5-coder-0.5b] [--data ROOT] [--subset hand-crafted|sven] [--files N]
        [--seed 0] [--precisions float32,bf16-mixed,bfloat16,int8] [--no-sweep]
        [--cache-dir DIR [--cache-read-only]]

The files: the SecLLMHolmes hand-crafted files (48) or SVEN, each prepared exactly as the full study
preset's cross-fitted cell of that data prepares it (experiments/study_spec.py `preset("full")`: its
template S1, code budget and long-file policy; for SVEN, pairs with a side over 384 code tokens left out
whole, so every file kept has its twin). `--files N`: a seeded (`--seed`, the preset's by default),
class-balanced sample of N of the kept files, whole pairs first (experiments/coverage.py, as
`--generate-sample` draws); default every kept file.

Per precision against float32: per-file answer score Spearman / Pearson / largest absolute difference,
verdict agreement, baseline AUROC, the per-layer probe AUROC curve (grouped k-fold as `vulnsteer probe`
computes it, k = 5 or the number of scenario groups if fewer) and its largest difference from float32's,
and (unless `--no-sweep`) the scores of a 24-layer x 6-strength random-direction sweep (as
benchmarks/bench.py runs it).

The bar a precision must pass to be the default (model/precision.py), judged on the answer scores,
verdicts and probe curve only (the sweep columns are reported beside it and are not part of the bar, so
`--no-sweep` judges the same bar): answer-score Spearman >= 0.99, verdicts agree on >= 95% of files, every
probe-curve point within 0.02 AUROC of float32's. This script measures fidelity only (no timings: those
come from benchmarks/bench.py on a quiet machine).

`--cache-dir DIR` (with `--no-sweep`; the sweep re-enters each pass, which the cache does not hold): float32
passes are read from, and missing ones stored in, vulnsteer's activation cache under DIR (as `vulnsteer
--cache-dir`); `--cache-read-only` only reads it (another run's cache, e.g. a study's). Every other
precision is always computed. Cached float32 entries are keyed by the model, template and exact prompt,
not by vulnsteer's code or thread count: they are the passes of the run that stored them.

int8 = int8 weights per channel and dynamic per-token int8 activations on every Linear layer, through
torchao (`pip install --no-deps torchao`); vulnsteer does not offer it (it failed the bar), so its
conversion lives here.
"""

from __future__ import annotations

import argparse
import gc
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score

from vulnsteer.activations.cache import ActivationCache, prompt_key
from vulnsteer.activations.layers import block_outputs
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.load import SVEN
from vulnsteer.evaluation.probe_curve import probe_folds
from vulnsteer.evaluation.probes import layer_probes
from vulnsteer.experiments.config import BaselineConfig
from vulnsteer.experiments.coverage import FileKey, complete_pairs, generation_sample
from vulnsteer.experiments.study_spec import cell_config, preset
from vulnsteer.model.loading import LoadedModel, default_cache_dir, load_model
from vulnsteer.model.precision import Precision, to_precision
from vulnsteer.options import StrengthUnit, StudyPreset
from vulnsteer.prompting.context import Context, activation_cache, open_context
from vulnsteer.prompting.samples import Sample, build_samples, run_samples
from vulnsteer.prompting.windows import pool_scores
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector

STRENGTHS = (-4.0, -2.0, -1.0, 1.0, 2.0, 4.0)
BAR_SPEARMAN, BAR_AGREEMENT, BAR_PROBE = 0.99, 0.95, 0.02
SUBSETS = ("hand-crafted", SVEN)
PRECISIONS = (*(p.value for p in Precision), "int8")


@dataclass
class Measured:
    labels: np.ndarray  # [n] 1 = vulnerable
    scores: np.ndarray  # [n] answer scores
    probe_auroc: np.ndarray  # [n_layers]
    sweep: np.ndarray | None  # [n, n_layers * len(STRENGTHS)]; None with --no-sweep


def to_int8(loaded: LoadedModel) -> None:
    """int8 per-channel weights and dynamic per-token int8 activations on every Linear (torchao)."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(loaded.model, Int8DynamicActivationInt8WeightConfig())


def preset_baseline(subset: str) -> BaselineConfig:
    """How the full preset's cross-fitted cell of `subset` reads it (template, code budget, long-file policy, seed)."""
    spec = preset(StudyPreset.FULL)
    cell = next(c for c in spec.cells() if c.split.fit == (subset,) and not c.split.test)
    return cell_config(spec, cell).baseline


def study_files(ctx: Context, cfg: BaselineConfig, n: int | None, seed: int) -> tuple[list[Sample], str]:
    """The files the preset keeps (skipped ones left out), or a seeded class-balanced sample of n of them,
    in load order; and a line saying what they are."""
    samples = build_samples(ctx.records, ctx.loaded, cfg.template, ctx.cwe_names, ctx.data_root,
                            cfg.max_code_tokens, cfg.long_files)
    kept = [s for s in samples if not s.fit.skipped]
    keys = [FileKey(s.record.id, s.record.label, s.record.pair_id) for s in kept]
    drawn = generation_sample(keys, n, seed) if n is not None else frozenset(k.id for k in keys)
    chosen = [s for s in kept if s.record.id in drawn]
    n_vul = sum(s.record.label == 1 for s in chosen)
    pairs = len(complete_pairs([k for k in keys if k.id in drawn]))
    how = f"a sample drawn with seed {seed} from" if len(chosen) < len(kept) else "all of"
    return chosen, (f"{cfg.subsets[0]}: {len(chosen)} files ({n_vul} vulnerable, {len(chosen) - n_vul} secure, "
                    f"{pairs} whole pairs), {how} the {len(kept)} of {len(samples)} files the full preset keeps "
                    f"(template {cfg.template}, --long-files {cfg.long_files.value} at {cfg.max_code_tokens} code "
                    "tokens)")


def cached_windows(cache: ActivationCache, samples: list[Sample], loaded: LoadedModel, words: AnswerWords) -> int:
    """How many of the samples' windows the cache holds (run_samples reads them under the same key)."""
    rows = words.rows.tolist()
    return sum(cache.get(prompt_key(loaded.source_hash, s.template_id, w.prompt, rows)) is not None
               for s in samples for w in s.windows)


def measure(loaded: LoadedModel, samples: list[Sample], words: AnswerWords, sweep: bool,
            cache: ActivationCache | None = None) -> Measured:
    sset = run_samples(samples, loaded, words, cache=cache, keep_states=sweep, description=f"{loaded.dtype} passes")
    parts = loaded.parts
    records = [s.record for s in sset.samples]
    groups = [r.group for r in records]
    probes = layer_probes(block_outputs(sset.residuals).numpy(), sset.labels.numpy(), groups,  # as `vulnsteer probe`
                          k=probe_folds(len(set(groups))), seed=0, cwes=[r.cwe for r in records])
    if not sweep:
        return Measured(sset.labels.numpy(), sset.scores.numpy(), probes.auroc, None)
    g = torch.Generator().manual_seed(0)
    ivs = []
    for layer in range(parts.n_layers):  # the same random directions for every precision
        v = SteeringVector({layer: torch.randn(parts.d_model, generator=g)}, Application(unit=StrengthUnit.UNIT),
                           Provenance(method="random"))
        ivs += [iv for a in STRENGTHS for iv in v.interventions(a, "add")]
    # Each sample's windows steered alike and pooled, as the steering experiment scores them.
    scores = torch.stack([pool_scores(torch.stack([score_interventions(parts, st, ivs, words) for st in states]))
                          for states in sset.states or []])
    return Measured(sset.labels.numpy(), sset.scores.numpy(), probes.auroc, scores.numpy())


def arguments() -> argparse.Namespace:
    """The options, every one checked before the model loads."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--data", type=Path, default=None,
                    help="data root, as vulnsteer's --data (else $VULNSTEER_DATA, else ../shared/data)")
    ap.add_argument("--subset", choices=SUBSETS, default="hand-crafted",
                    help="the data, prepared as the full study preset prepares it")
    ap.add_argument("--files", type=int, default=None,
                    help="a seeded class-balanced sample of this many files, whole pairs first (default: all kept)")
    ap.add_argument("--seed", type=int, default=None, help="the sample's seed (default: the preset's)")
    ap.add_argument("--precisions", default="float32,bf16-mixed,bfloat16,int8")
    ap.add_argument("--no-sweep", dest="sweep", action="store_false",
                    help="skip the random-direction sweep (not part of the bar)")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="float32 passes from (and into) vulnsteer's activation cache under this folder")
    ap.add_argument("--cache-read-only", action="store_true", help="only read --cache-dir (e.g. a study's)")
    args = ap.parse_args()
    args.precisions = list(dict.fromkeys(p.strip() for p in args.precisions.split(",") if p.strip()))
    unknown = [p for p in args.precisions if p not in PRECISIONS]
    if unknown:
        ap.error(f"--precisions {unknown[0]!r}: use any of {', '.join(PRECISIONS)}")
    if "float32" not in args.precisions:
        ap.error("--precisions must include float32: every other precision is compared with it")
    if args.files is not None and args.files < 4:
        ap.error(f"--files {args.files}: at least 4 (two pairs), so the probes have both classes in every fold")
    if args.cache_dir is not None and args.sweep:
        ap.error("--cache-dir needs --no-sweep: the sweep re-enters each pass, which the cache does not hold")
    if args.cache_read_only and args.cache_dir is None:
        ap.error("--cache-read-only needs --cache-dir")
    return args


def main() -> None:
    args = arguments()
    cfg = preset_baseline(args.subset)
    ctx = open_context(args.model, args.data, None, cfg.subsets, cfg.cwes, dtype="float32")
    samples, what = study_files(ctx, cfg, args.files, cfg.seed if args.seed is None else args.seed)
    print(what, flush=True)
    cache = None
    if args.cache_dir is not None:
        cache = replace(activation_cache(ctx.loaded, args.cache_dir), read_only=args.cache_read_only)
        print(f"float32: {cached_windows(cache, samples, ctx.loaded, ctx.words)} of "
              f"{sum(len(s.windows) for s in samples)} prompt windows found in {cache.root}"
              f"{' (read only)' if cache.read_only else ''}", flush=True)
    results: dict[str, Measured] = {}
    for name in ["float32", *(p for p in args.precisions if p != "float32")]:
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
        results[name] = measure(loaded, samples, ctx.words, args.sweep, cache if name == "float32" else None)
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
    sweep = ref.sweep is not None
    head = ("| precision | answer Spearman | answer Pearson | max abs diff | verdict agreement | baseline AUROC "
            "| probe AUROC max diff (best layer, AUROC) |" + (" sweep Spearman | sweep Pearson | sweep max diff |"
                                                              if sweep else "") + " passes bar |")
    rows = [head, "|" + "---|" * head.count(" |")]
    for name, m in results.items():
        rho = spearmanr(m.scores, ref.scores).statistic
        r = pearsonr(m.scores, ref.scores).statistic
        agree = float(np.mean((m.scores > 0) == (ref.scores > 0)))
        probe_diff = float(np.nanmax(np.abs(m.probe_auroc - ref.probe_auroc)))
        best = int(np.nanargmax(m.probe_auroc))
        ok = rho >= BAR_SPEARMAN and agree >= BAR_AGREEMENT and probe_diff <= BAR_PROBE
        cells = ""
        if m.sweep is not None and ref.sweep is not None:
            s, t = m.sweep.ravel(), ref.sweep.ravel()
            cells = (f" {spearmanr(s, t).statistic:.4f} | {pearsonr(s, t).statistic:.4f} "
                     f"| {np.max(np.abs(s - t)):.3f} |")
        rows.append(
            f"| {name} | {rho:.4f} | {r:.4f} | {np.max(np.abs(m.scores - ref.scores)):.3f} | {agree:.1%} "
            f"| {roc_auc_score(y, m.scores):.3f} | {probe_diff:.3f} ({best}, {m.probe_auroc[best]:.3f}) |{cells}"
            f" {'yes' if ok else 'no'} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
