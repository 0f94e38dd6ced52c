"""How a reader should take the report's held-out numbers: cross-fitted test folds, or a transfer run's
test-on data (`--fit-on X --test-on Y`, experiments/transfer.py), named "fit on X, tested on Y"."""

from __future__ import annotations

from collections.abc import Mapping

from vulnsteer.report.blocks import Block, Text
from vulnsteer.report.tables import PC_LABEL

HOW_TO_READ_CROSSFIT = [
    "Held-out numbers come from cross-fitted test folds over scenario groups: every sample is tested once, by a "
    "vector fit on other folds, and a scenario's patched twin and augmentations never sit in its training or "
    "validation folds.",
    "Every configuration (layer, method, operator, strength, calibrated threshold, probe layer) was chosen on the "
    "validation fold only; the test fold was never used to choose anything.",
]
HOW_TO_READ_TRANSFER = [
    "Held-out numbers come from the test-on data alone, scored once: vectors, probes and the probe curve were fit "
    "on the fit-on data, which shares no scenario group and no byte-identical file with it (checked before the run).",
    "Every configuration (layer, method, operator, strength, calibrated threshold, probe layer) was chosen on a "
    "validation split of the fit-on data (whole scenario groups, transfer.json); the test-on data chose nothing.",
]
HOW_TO_READ_COMMON = [
    "Intervals are 95% cluster-bootstrap percentile intervals, resampling scenario groups; deltas are paired "
    "(condition minus baseline on the same samples). 'n/a' marks a metric that is undefined here, e.g. AUROC "
    "with a single class or pair metrics without complete pairs.",
    "Each paired comparison also gives its minimal detectable effect (MDE, 80% power, two-sided 5% level, from "
    "the bootstrap standard error over scenario groups). The MDE is a property of the design: the change it "
    "would detect 80% of the time. What a comparison whose interval includes 0 rules out is read from the "
    "interval itself: changes beyond its ends. An interval of zero width means both conditions gave the same "
    "result on every resample (identical answers).",
    "A metric shown as 'value [n/a]' has fewer than 5 scenario groups (or too few defined resamples) for a "
    "bootstrap interval; where the point sat at an end of its percentile interval, the bias-corrected "
    "percentile interval is shown instead.",
    f"{PC_LABEL} is PrimeVul's P-C metric (pair-wise correct): the share of vulnerable/patched pairs whose two "
    "files are both classified correctly.",
    "The random-direction control replaces the chosen direction by a uniformly random one at the same layer, with "
    "the same scale, operator and strength; "
    "a steering effect is only interesting where it exceeds that control.",
]


def transfer_text(config: object) -> str | None:
    """"fit on X, tested on Y" for a transfer run's config.json (None for a cross-fitted run)."""
    if not isinstance(config, dict) or not config.get("fit_on"):
        return None
    return f"fit on {' + '.join(map(str, config['fit_on']))}, tested on {' + '.join(map(str, config.get('test_on') or []))}"


def transfer_lead(config: object, transfer: object) -> list[Block]:
    """For a transfer run: what was fit on and what tested on, with the sizes of each part (transfer.json);
    nothing for a cross-fitted run."""
    where = transfer_text(config)
    if where is None:
        return []
    t = transfer if isinstance(transfer, Mapping) else {}
    sizes = (f" Fit-on: {t['n_fit_train']} training and {t['n_fit_validation']} validation samples ({t['split']}); "
             f"test-on: {t['n_test']} samples; vectors: {t['vectors']}." if "n_test" in t else "")
    return [Text(f"Transfer run: {where}.{sizes}")]


def how_to_read(config: object) -> list[str]:
    """The "How to read this" paragraphs for a cross-fitted or a transfer run (by its config.json)."""
    transfer = transfer_text(config) is not None
    return (HOW_TO_READ_TRANSFER if transfer else HOW_TO_READ_CROSSFIT) + HOW_TO_READ_COMMON
