"""The transfer experiment (`--fit-on X --test-on Y`): vectors, probes and every choice come from the fit-on
data, the reported numbers from the test-on data, which is used once.

The fit-on samples are split once by scenario group (`evaluation.splits.validation_groups`: about 1/k of
the groups, k = --folds, seeded by --seed) into training and validation. Steering then runs the cross-fitting
code of experiments/steer.py with that one split in place of the folds: vectors fit on the training part,
the configuration (layer x method x operator x strength), the probe layer and the calibrated threshold are
chosen on the validation part, and the test-on samples are scored once with what was chosen. One split
rather than k: every validation sample costs a full sweep, and fit-on data such as SVEN is large.

The fit-on files are read exactly as the test-on files are: under the run's template and long-file policy
(--long-files, default windows, so a long fit-on file is read in windows and pooled like a long test-on file,
rather than skipped as `--train` extras are), and probes and vectors read the run's --readout, so a
direction is fit on the same kind of residual it is tested on.

Preflight has already refused fit-on and test-on data that share a scenario group or a file
(data.disjoint); `prepare_transfer` checks the split once more, on the samples it actually runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from vulnsteer.activations.layers import block_outputs
from vulnsteer.data.disjoint import load_fit_on
from vulnsteer.evaluation.probe_curve import ProbeCurve
from vulnsteer.evaluation.probes import transfer_probes
from vulnsteer.evaluation.splits import TransferSplit, assert_no_leak, validation_groups
from vulnsteer.experiments.config import RunConfig
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.options import Readout
from vulnsteer.prompting.context import Context
from vulnsteer.prompting.pass_slots import Passes, Slot
from vulnsteer.prompting.samples import SampleSet, build_samples, run_samples
from vulnsteer.vectors.training import POOLED


@dataclass
class Transfer:
    """The samples of a transfer run in one set, and its split into them."""

    main: SampleSet  # fit-on training samples, then fit-on validation samples, then the test-on samples
    split: TransferSplit

    @property
    def fit(self) -> SampleSet:
        return self.main.subset(np.concatenate([self.split.train, self.split.val]).tolist())

    @property
    def test(self) -> SampleSet:
        return self.main.subset(self.split.test.tolist())


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if any(p is None for p in parts) else torch.cat([p for p in parts if p is not None])


def concat(sets: list[SampleSet]) -> SampleSet:
    """One SampleSet holding `sets` in order; states kept where any set kept them (no passes, `()`, for the
    samples of a set that kept none: the fit-on training samples, which are never steered)."""
    kept = any(s.states is not None for s in sets)
    return SampleSet(
        samples=[x for s in sets for x in s.samples],
        scores=torch.cat([s.scores for s in sets]),
        residuals=torch.cat([s.residuals for s in sets]),
        span_means=_cat([s.span_means for s in sets]),
        span_lasts=_cat([s.span_lasts for s in sets]),
        states=Passes.concat([s.states if s.states is not None else Passes(Slot(()) for _ in s.samples)
                              for s in sets]) if kept else None,
        skipped=[x for s in sets for x in s.skipped],
        keys=[k for s in sets for k in s.keys],
        cache=next((s.cache for s in sets if s.cache is not None), None),
    )


def prepare_transfer(ctx: Context, cfg: RunConfig, run: RunDir, test: SampleSet, keep_states: bool) -> Transfer:
    """Run the fit-on samples (resumable states for the validation part when `keep_states`, for the
    steering sweep) and put them before the test-on samples `test`; writes transfer.json."""
    b = cfg.baseline
    records = load_fit_on(ctx.data_root, cfg.fit_on, cfg.test_on, b.cwes)
    budget = cfg.fit_max_code_tokens or b.max_code_tokens
    policy = cfg.fit_long_files or b.long_files
    samples = build_samples(records, ctx.loaded, b.template, ctx.cwe_names, ctx.data_root, budget, policy)
    live = [s for s in samples if not s.fit.skipped]
    train, val = validation_groups([s.record.group for s in live], cfg.steer.k_folds, cfg.steer.seed,
                                   labels=[s.record.label for s in live])
    fit_train = run_samples([live[i] for i in train], ctx.loaded, ctx.words, ctx.cache,
                            description="fit-on passes (training)")
    fit_val = run_samples([live[i] for i in val], ctx.loaded, ctx.words, ctx.cache, keep_states=keep_states,
                          description="fit-on passes (validation)")
    fit_train.skipped, fit_val.skipped = [], []  # the fit-on skips go to transfer.json, not the baseline rows
    main = concat([fit_train, fit_val, test])
    n_train, n_fit = len(fit_train.samples), len(fit_train.samples) + len(fit_val.samples)
    split = TransferSplit(np.arange(n_train), np.arange(n_train, n_fit), np.arange(n_fit, len(main.samples)))
    assert_no_leak([s.record.group for s in main.samples], split.train, split.val, split.test)
    fit_cwes = Counter(s.record.cwe for s in live)
    run.write_json(schema.TRANSFER, {
        "fit_on": list(cfg.fit_on), "test_on": list(cfg.test_on),
        "split": f"one grouped split of the fit-on groups: fold 0 of {cfg.steer.k_folds} validates "
                 f"(seed {cfg.steer.seed}), the rest trains",
        "n_fit_train": n_train, "n_fit_validation": n_fit - n_train, "n_test": len(test.samples),
        "long_files": policy.value, "max_code_tokens": budget, "n_fit_skipped": len(samples) - len(live),
        "n_fit_windowed": sum(len(s.windows) > 1 for s in live), "readout": cfg.readout.value,
        "validation_groups": sorted({live[i].record.group for i in val}),
        "fit_cwes": dict(sorted(fit_cwes.items())),
        "test_cwes": dict(sorted(Counter(s.record.cwe for s in test.samples).items())),
        "vectors": "per CWE where the CWE has >= 2 fit-on training pairs, else pooled" if cfg.steer.per_cwe
                   else f"{POOLED} over every fit-on CWE",
    })
    if len(live) < len(samples):
        run.note(f"long files {policy.value} skipped {len(samples) - len(live)} fit-on file(s) that did not "
                 f"fit {budget} code tokens")
    return Transfer(main, split)


def transfer_probe_curve(t: Transfer, seed: int, readout: Readout, repeats: int = 3) -> ProbeCurve:
    """Per layer: a probe fit on every fit-on sample, scored on the test-on samples, both read at `readout`;
    the control fits on permuted fit-on labels (`repeats` permutations)."""
    fit, test = t.fit, t.test
    Xf, yf = block_outputs(fit.readout(readout)).numpy(), fit.labels.numpy()
    Xt, yt = block_outputs(test.readout(readout)).numpy(), test.labels.numpy()
    cwes = [s.record.cwe for s in test.samples]
    result = transfer_probes(Xf, yf, Xt, yt, seed=seed, cwes=cwes, progress=True)
    control = np.stack([transfer_probes(Xf, yf, Xt, yt, seed=seed + 1 + r, shuffle_labels=True, progress=True).auroc
                        for r in range(repeats)])
    return ProbeCurve(result=result, control=control)
