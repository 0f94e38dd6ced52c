"""Plots from fabricated curves (test input shaped like docs/RUN_FOLDER.md, not results)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from vulnsteer.errors import DataError
from vulnsteer.report.plots import condition_bars_plot, layer_curves_plot, probe_curve_plot, strength_curves_plot

CONDITIONS = ("baseline", "baseline_calibrated", "steered", "random", "opposite", "probe")


def probe_curve(n_layers: int = 6) -> dict:
    layers = list(range(n_layers))
    auroc = [0.55 + 0.05 * k for k in layers]
    return {"layers": layers, "auroc": auroc, "accuracy": [a - 0.05 for a in auroc],
            "control_auroc_mean": [0.5] * n_layers, "control_auroc_max": [0.58] * n_layers,
            "per_cwe_auroc": {"CWE-22": [0.6] * n_layers, "CWE-78": [None] + [0.7] * (n_layers - 1)}, "best_layer": 5}


def steer_curves() -> dict:
    return {
        "caa/add": {"layer": 3, "alphas": [-4, -2, -1, 1, 2, 4], "balanced_accuracy": [0.5, 0.52, 0.55, 0.6, 0.58, 0.5],
                    "auroc": [0.6] * 6},
        "probe/ablate": {"layer": 2, "alphas": [0.0], "balanced_accuracy": [0.51], "auroc": [None]},
        "by_layer": {"caa/add": {"layers": [0, 1, 2, 3], "balanced_accuracy": [0.5, 0.55, 0.6, 0.58],
                                 "auroc": [0.6, 0.62, 0.64, 0.6]}},
    }


def steer_summary() -> dict:
    conds = {c: {"all": {"accuracy": [0.5 + 0.03 * i, 0.4, 0.7], "auroc": [0.6, 0.5, 0.7]}} for i, c in enumerate(CONDITIONS)}
    conds["probe"]["all"]["auroc"] = [None, None, None]
    return {"conditions": conds}


def assert_png(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert np.ptp(img[..., :3]) > 0  # something was drawn


def test_probe_curve_plot(tmp_path):
    out = probe_curve_plot(probe_curve(), tmp_path / "figures" / "probe.png")
    assert out == tmp_path / "figures" / "probe.png"
    assert_png(out)


def test_strength_and_layer_plots(tmp_path):
    curves = steer_curves()
    assert_png(strength_curves_plot(curves, tmp_path / "strength.png"))
    assert_png(layer_curves_plot(curves["by_layer"], tmp_path / "layers.png"))


def test_condition_bars_with_nan_interval(tmp_path):
    assert_png(condition_bars_plot(steer_summary(), tmp_path / "bars.png"))


def test_malformed_inputs_are_data_errors(tmp_path):
    bad = probe_curve()
    del bad["control_auroc_max"]
    with pytest.raises(DataError, match="control_auroc_max"):
        probe_curve_plot(bad, tmp_path / "x.png")
    with pytest.raises(DataError, match="strength curves"):
        strength_curves_plot({"by_layer": {}}, tmp_path / "x.png")
    with pytest.raises(DataError, match="conditions"):
        condition_bars_plot({"conditions": {}}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def _overlaps_plot(fig) -> list[str]:
    """Titles of the axes whose legend's box overlaps the axes' plot area once drawn."""
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None and legend.get_window_extent().overlaps(ax.get_window_extent()):
            out.append(ax.get_title())
    return out


def test_legends_sit_beside_the_plot_not_over_its_lines():
    from vulnsteer.report.plots import layer_curves_figure, probe_curve_figure, strength_curves_figure

    for fig in (probe_curve_figure(probe_curve()), layer_curves_figure(steer_curves()["by_layer"]),
                strength_curves_figure(steer_curves())):
        assert any(ax.get_legend() is not None for ax in fig.axes)
        assert _overlaps_plot(fig) == []


def test_the_ablate_panel_is_one_labelled_point_not_a_tiny_axis():
    from vulnsteer.report.plots import strength_curves_figure

    ablate = [ax for ax in strength_curves_figure(steer_curves()).axes if ax.get_title().startswith("ablate")]
    assert len(ablate) == 2
    for ax in ablate:
        lo, hi = ax.get_xlim()
        assert hi - lo >= 2.0 and [t.get_text() for t in ax.get_xticklabels()] == ["ablate"]
