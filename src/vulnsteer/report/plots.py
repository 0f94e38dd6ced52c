"""Report figures as PNG files. Figures are built on the Agg canvas directly (no pyplot), so plotting
never touches global backend state or opens a window."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vulnsteer.errors import DataError
from vulnsteer.report.results import ProbeCurve

DPI = 110
BAR_LABELS = {"baseline": "baseline", "baseline_calibrated": "baseline,\ncalibrated", "steered": "steered",
              "random": "random\ndirection", "opposite": "opposite\nsign", "probe": "probe",
              "amplify": "amplify", "conditional": "conditional"}


def _figure(ncols: int = 1, width: float = 6.4) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * ncols, 4.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Figure, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _need(mapping: Mapping, keys: Sequence[str], what: str) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise DataError(f"{what}: missing {missing[0]!r}; rerun the stage that writes it")


def legend_outside(ax, fontsize: float = 8):
    """The axes' legend to the right of its plot area, never over a line (constrained layout makes room)."""
    return ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _single_x(ax, xs: Sequence[float], label: str) -> None:
    """A panel whose curves all sit at one x (ablation has no strength): one labelled tick, not a +-0.04 axis."""
    ax.set_xticks([xs[0]], [label])
    ax.set_xlim(xs[0] - 1.0, xs[0] + 1.0)


def _chance(ax) -> None:
    ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="chance (0.5)")


def probe_curve_plot(curve: dict, out: Path) -> Path:
    """`probe_curve_figure` as a PNG at `out`."""
    return _save(probe_curve_figure(curve), out)


def probe_curve_figure(curve: dict) -> Figure:
    """Probe AUROC per layer, with the shuffled-label control (mean solid, max dashed) and per-CWE lines."""
    _need(curve, ("layers", "auroc", "control_auroc_mean", "control_auroc_max"), "probe/curve.json")
    fig, (ax,) = _figure()
    layers = np.asarray(curve["layers"])
    for i, (_cwe, values) in enumerate(sorted(curve.get("per_cwe_auroc", {}).items())):
        ax.plot(layers, _floats(values), color="tab:blue", lw=0.8, alpha=0.3, label="per CWE" if i == 0 else None)
    ax.plot(layers, _floats(curve["auroc"]), color="tab:blue", lw=2, marker="o", ms=3, label="probe (all)")
    ax.plot(layers, _floats(curve["control_auroc_mean"]), color="tab:red", lw=1.2, label="shuffled labels, mean")
    ax.plot(layers, _floats(curve["control_auroc_max"]), color="tab:red", lw=1.2, ls="--",
            label="shuffled labels, max")
    if curve.get("best_layer") is not None:
        ax.axvline(curve["best_layer"], color="black", lw=0.8, ls="-.", label=f"best layer ({curve['best_layer']})")
    _chance(ax)
    ax.set(title="Linear probe: is 'vulnerable' linearly readable? (grouped CV)",
           xlabel="layer (output of block k)", ylabel="AUROC (held-out folds)", ylim=(0.0, 1.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(ax)
    return fig


def probe_depth_plot(curves: Mapping[str, Mapping], out: Path) -> Path:
    """Probe AUROC against relative depth (block k's output at (k + 1) / n_blocks), one line per model."""
    fig, (ax,) = _figure(width=7.2)
    for label, curve in curves.items():
        _need(curve, ("layers", "auroc"), f"probe/curve.json of {label}")
        layers = np.asarray(curve["layers"], dtype=float)
        n_blocks = int(curve.get("n_layers") or len(layers))
        ax.plot((layers + 1) / n_blocks, _floats(curve["auroc"]), marker="o", ms=3, label=label)
    _chance(ax)
    ax.set(title="Linear probe AUROC by relative depth (grouped CV)", xlabel="relative depth (block k at (k+1)/blocks)",
           ylabel="AUROC (held-out folds)", xlim=(0.0, 1.02), ylim=(0.0, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, out)


def study_probe_plot(panels: Mapping[str, Mapping[str, ProbeCurve]], out: Path) -> Path:
    """Probe AUROC by layer, one panel per model and split, one line per readout, each with its shuffled-label
    band (mean to max of the label-shuffled probes) in the line's colour."""
    if not panels:
        raise DataError("no cell has probe/curve.json to plot")
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(5.6 * ncols, 4.0 * nrows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (title, curves) in zip(axes, panels.items()):
        for i, (readout, c) in enumerate(curves.items()):
            color = f"C{i}"
            layers = np.asarray(c.layers)
            ax.plot(layers, _floats(c.auroc), color=color, lw=1.8, marker="o", ms=3, label=f"{readout} probe")
            ax.fill_between(layers, _floats(c.control_mean), _floats(c.control_max), color=color, alpha=0.15, lw=0,
                            label=f"{readout}: shuffled labels, mean to max")
        _chance(ax)
        ax.set(title=title, xlabel="layer (output of block k)", ylabel="AUROC (held-out folds)", ylim=(0.0, 1.02))
        ax.title.set_fontsize(9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_outside(ax, fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return _save(fig, out)


def _method_curves(curves: Mapping) -> dict[str, Mapping]:
    return {k: v for k, v in curves.items() if k != "by_layer" and isinstance(v, Mapping)}


def strength_curves_plot(curves: dict, out: Path) -> Path:
    """`strength_curves_figure` as a PNG at `out`."""
    return _save(strength_curves_figure(curves), out)


def strength_curves_figure(curves: dict) -> Figure:
    """Validation balanced accuracy and AUROC against alpha, one line per method/operator at its best layer."""
    methods = _method_curves(curves)
    if not methods:
        raise DataError("steer/curves.json: no '<method>/<operator>' strength curves")
    # One row per operator: an additive strength (units of the strength unit, e.g. sigma) and an amplification
    # factor are different quantities, so they never share an x axis. Each panel has its own legend.
    by_op: dict[str, dict[str, Mapping]] = {}
    for key, c in sorted(methods.items()):
        _need(c, ("alphas", "balanced_accuracy", "auroc"), f"steer/curves.json[{key!r}]")
        by_op.setdefault(key.split("/")[-1], {})[key] = c
    xlabel = {"add": "additive strength (in the run's strength unit, e.g. sigma)",
              "amplify": "amplification factor alpha", "ablate": "ablation (no strength)"}
    fig = Figure(figsize=(11.2, 3.6 * len(by_op)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(len(by_op), 2, squeeze=False)
    for row, (op, curves_of_op) in zip(grid, sorted(by_op.items())):
        for ax, metric, name in zip(row, ("balanced_accuracy", "auroc"), ("balanced accuracy", "AUROC")):
            for key, c in curves_of_op.items():
                label = f"{key.split('/')[0]} (L{c['layer']})" if "layer" in c else key.split("/")[0]
                ax.plot(_floats(c["alphas"]), _floats(c[metric]), marker="o", ms=3, label=label)
            _chance(ax)
            ax.set(title=f"{op}: validation {name}", xlabel=xlabel.get(op, f"{op} strength"), ylabel=name,
                   ylim=(0.0, 1.02))
            xs = sorted({float(a) for c in curves_of_op.values() for a in c["alphas"]})
            if len(xs) == 1:
                _single_x(ax, xs, op if op == "ablate" else f"{op} {xs[0]:g}")
            legend_outside(ax)
    return fig


def layer_curves_plot(by_layer: dict, out: Path) -> Path:
    """`layer_curves_figure` as a PNG at `out`."""
    return _save(layer_curves_figure(by_layer), out)


def layer_curves_figure(by_layer: dict) -> Figure:
    """Validation balanced accuracy and AUROC against layer, one line per method/operator at its best alpha."""
    if not by_layer:
        raise DataError("steer/curves.json: 'by_layer' is empty")
    fig, axes = _figure(2, width=5.6)
    for key, c in sorted(by_layer.items()):
        _need(c, ("layers", "balanced_accuracy", "auroc"), f"steer/curves.json['by_layer'][{key!r}]")
        for ax, metric in zip(axes, ("balanced_accuracy", "auroc")):
            label = f"{key} (alpha {c['alpha']})" if "alpha" in c else key
            ax.plot(np.asarray(c["layers"]), _floats(c[metric]), marker="o", ms=3, label=label)
    for ax, name in zip(axes, ("balanced accuracy", "AUROC")):
        _chance(ax)
        ax.set(title=f"Validation {name} vs layer steered (best alpha)", xlabel="layer", ylabel=name,
               ylim=(0.0, 1.02))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(axes[1])
    return fig


def _bar(values: Any) -> tuple[float, float, float]:
    """(value, lower error, upper error); NaN value draws no bar, a NaN interval no whisker."""
    v = _floats(list(values)[:3] if isinstance(values, Sequence) else [values, None, None])
    v = np.concatenate([v, np.full(3 - len(v), np.nan)])
    lo = 0.0 if np.isnan(v[1]) else max(v[0] - v[1], 0.0)
    hi = 0.0 if np.isnan(v[2]) else max(v[2] - v[0], 0.0)
    return float(v[0]), lo, hi


def condition_bars_plot(steer_summary: dict, out: Path) -> Path:
    """Held-out accuracy and AUROC per condition, with 95% cluster-bootstrap intervals as error bars."""
    conditions = steer_summary.get("conditions", {})
    names = [c for c in BAR_LABELS if c in conditions]
    if not names:
        raise DataError("steer/summary.json: no conditions to plot")
    fig, (ax,) = _figure(width=8.0)
    x = np.arange(len(names))
    width = 0.38
    for j, metric in enumerate(("accuracy", "auroc")):
        bars = [_bar(conditions[c].get("all", {}).get(metric, [None])) for c in names]
        vals = np.array([b[0] for b in bars])
        err = np.array([[b[1] for b in bars], [b[2] for b in bars]])
        ax.bar(x + (j - 0.5) * width, vals, width, yerr=err, capsize=3,
               label="accuracy" if metric == "accuracy" else "AUROC", color=("tab:blue", "tab:orange")[j])
    _chance(ax)
    ax.set_xticks(x, [BAR_LABELS[c] for c in names], fontsize=9)
    ax.set(title="Held-out accuracy and AUROC by condition (95% cluster-bootstrap CI)", ylabel="value",
           ylim=(0.0, 1.05))
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, out)
