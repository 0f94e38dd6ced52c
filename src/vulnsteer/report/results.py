"""Typed readers of a run folder's headline results (names from experiments/run_folder/schema.py), for reports that put
many runs side by side: each number once, as an `Estimate`, or None where the run did not write it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vulnsteer.errors import DataError
from vulnsteer.experiments.coverage import GeneratedCounts, KeptCounts
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.reader import Run, unfinished
from vulnsteer.report.tables import fmt, fmt_ci


def _float(x: Any) -> float | None:
    """A stored number (JSON null for NaN reads as None; a string is not a number)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return None
    v = float(x)
    return None if math.isnan(v) else v


@dataclass(frozen=True)
class Estimate:
    """A stored metric [value, low, high] (95% interval), with the minimal detectable effect where a paired
    delta stores one as a fourth item."""

    value: float | None
    low: float | None = None
    high: float | None = None
    mde: float | None = None

    @classmethod
    def read(cls, x: Any) -> Estimate | None:
        """From a number or a [value, low, high(, mde)] list; None for anything else."""
        if isinstance(x, Sequence) and not isinstance(x, str):
            items = [_float(v) for v in list(x)[:4]] + [None] * 4
            return cls(*items[:4]) if len(x) else None
        v = _float(x)
        return None if v is None else cls(v)

    def text(self) -> str:
        """'0.62 [0.50, 0.75]', as every report table shows an interval."""
        return fmt_ci([self.value, self.low, self.high])


def cell(e: Estimate | None) -> str:
    return "missing" if e is None else e.text()


def mde_cell(e: Estimate | None) -> str:
    return "missing" if e is None else fmt(e.mde)


@dataclass(frozen=True)
class ProbeCurve:
    """probe/curve.json: grouped-CV probe AUROC per layer with the shuffled-label control's mean and max."""

    layers: list[int]
    auroc: list[float | None]
    control_mean: list[float | None]
    control_max: list[float | None]
    best_layer: int | None


@dataclass(frozen=True)
class RunResult:
    """What a study compares across runs, read from one run folder."""

    path: Path
    unfinished: str | None  # None when config.json says finished
    baseline_auroc: Estimate | None  # the answer score, all CWEs
    probe_auroc: Estimate | None  # held out, probe layer chosen on validation
    probe_accuracy: Estimate | None
    steered_minus_random: dict[str, Estimate]  # paired, per metric (accuracy, auroc, ...)
    curve: ProbeCurve | None
    long_files: str | None = None  # the long-file policy (config.json)
    kept: KeptCounts | None = None  # files and pairs the policy kept and dropped (baseline/samples.jsonl)
    generated: GeneratedCounts | None = None  # files with a generated answer; None: the run generated none
    conditional_delta: dict[str, Estimate] | None = None  # conditional minus unsteered, paired, per metric
    pairs_both_right: dict[str, Estimate] | None = None  # P-C per condition (baseline, steered, ...)
    dtype: str | None = None  # the precision the passes computed in (config.json)
    wall_seconds: float | None = None  # config.json's wall time (of an unfinished run: so far)
    shuffled_max: float | None = None  # the label-shuffled probes' highest AUROC over every layer


def _dict(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _curve(raw: Any, where: Path) -> ProbeCurve | None:
    if raw is None:
        return None
    try:
        return ProbeCurve([int(v) for v in raw["layers"]], [_float(v) for v in raw["auroc"]],
                          [_float(v) for v in raw["control_auroc_mean"]], [_float(v) for v in raw["control_auroc_max"]],
                          None if raw.get("best_layer") is None else int(raw["best_layer"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DataError(f"{where / schema.PROBE_CURVE}: incomplete probe curve; rerun the probe stage") from None


def read_result(run_dir: Path) -> RunResult:
    """The headline numbers of one run folder; a file the run did not write reads as None (an invalid one is
    a one-line DataError)."""
    run = Run(Path(run_dir))
    base = _dict(_dict(run.json(schema.BASELINE_SUMMARY)).get("score")).get("all")
    steer = _dict(run.json(schema.STEER_SUMMARY))
    probe = _dict(_dict(steer.get("conditions")).get("probe")).get("all")
    paired = {k: e for k, v in _dict(steer.get("steered_minus_random")).items() if (e := Estimate.read(v)) is not None}
    cfg = _dict(_dict(run.json(schema.CONFIG)).get("baseline"))
    rows = run.jsonl(schema.BASELINE_SAMPLES)
    sample = cfg.get("generate_sample")
    generated = (GeneratedCounts.of(rows, sample if isinstance(sample, int) else None)
                 if rows is not None and _dict(run.json(schema.BASELINE_SUMMARY)).get("generation") else None)
    conds = _dict(steer.get("conditions"))
    pc = {k: e for k, v in conds.items() if (e := Estimate.read(_dict(_dict(v).get("all")).get("pairs_both_right")))}
    cond = _dict(_dict(steer.get("deltas")).get("conditional"))
    top = _dict(run.json(schema.CONFIG))
    curve = _curve(run.json(schema.PROBE_CURVE), run.dir)
    return RunResult(
        path=run.dir, unfinished=unfinished(run.json(schema.CONFIG)),
        baseline_auroc=Estimate.read(_dict(base).get("auroc")) if base is not None else None,
        probe_auroc=Estimate.read(_dict(probe).get("auroc")) if probe is not None else None,
        probe_accuracy=Estimate.read(_dict(probe).get("accuracy")) if probe is not None else None,
        steered_minus_random=paired, curve=curve,
        long_files=None if cfg.get("long_files") is None else str(cfg["long_files"]),
        kept=None if rows is None else KeptCounts.of(rows), generated=generated,
        conditional_delta={k: e for k, v in cond.items() if (e := Estimate.read(v)) is not None} or None,
        pairs_both_right=pc or None, dtype=None if top.get("dtype") is None else str(top["dtype"]),
        wall_seconds=_float(top.get("wall_seconds")),
        shuffled_max=max((v for v in curve.control_max if v is not None), default=None) if curve else None,
    )
