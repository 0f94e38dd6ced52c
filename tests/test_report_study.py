"""study.md: every cell side by side, from the run folders alone; minimal detectable effects where the runs
store them, and cells that did not run or finish said so."""

from __future__ import annotations

import json
import shutil

from vulnsteer.report.study import write_study

CELLS = ["tiny-qwen2__answer__hand-crafted__crossfit", "tiny-qwen2__code-mean__hand-crafted__crossfit"]


def _rows(md: str, title: str) -> list[list[str]]:
    block = md.split(f"**{title}**", 1)[1].split("\n\n", 2)[1]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()]


def test_the_table_shows_every_cell_with_its_intervals(tiny_study):
    md = (tiny_study / "study.md").read_text()
    header, _, *rows = _rows(md, "Held-out results per cell (95% intervals)")
    assert header[:4] == ["#", "model", "readout", "data"]
    assert [r[2] for r in rows] == ["answer", "code-mean"]
    summary = json.loads((tiny_study / "cells" / CELLS[0] / "steer" / "summary.json").read_text())
    lo, hi, mde = summary["steered_minus_random"]["auroc"][1:4]
    assert rows[0][header.index("steered - random AUROC")].endswith(f"[{lo:.2f}, {hi:.2f}]")
    assert rows[0][header.index("MDE AUROC")] == f"{mde:.2f}"  # runs store the minimal detectable effect
    page = (tiny_study / "study.html").read_text()
    assert "data:image/png;base64," in page
    # each cell links to its own report, in both documents
    for c in json.loads((tiny_study / "study.json").read_text())["cells"]:
        assert f'<a href="{c["folder"]}/report.html">' in page and f"]({c['folder']}/report.md)" in md
    assert "shows no effect of the direction" not in md and "rules out only changes beyond its ends" in md
    assert "has random weights: every number below is a smoke test" in md.splitlines()[2]


def test_a_minimal_detectable_effect_gets_its_column_and_missing_cells_say_so(tiny_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    path = study / "cells" / CELLS[0] / "steer" / "summary.json"
    summary = json.loads(path.read_text())
    summary["steered_minus_random"]["accuracy"] = [0.01, -0.05, 0.07, 0.123]
    summary["steered_minus_random"]["auroc"] = summary["steered_minus_random"]["auroc"][:3]  # as an older run stored it
    path.write_text(json.dumps(summary))
    shutil.rmtree(study / "cells" / CELLS[1])
    md, _ = write_study(study)
    text = md.read_text()
    header, _, first, second = _rows(text, "Held-out results per cell (95% intervals)")
    assert first[header.index("steered - random accuracy")] == "0.01 [-0.05, 0.07]"
    assert first[header.index("MDE accuracy")] == "0.12" and first[header.index("MDE AUROC")] == "n/a"
    assert second[4:] == ["not run"] * (len(header) - 4)
    assert text.startswith("# vulnsteer study: 2 cells (1 finished)")
    config = study / "cells" / CELLS[0] / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "status": "failed"}))
    write_study(study)
    assert "unfinished (status failed)" in md.read_text()


def test_the_files_table_counts_what_each_cell_kept_dropped_and_generated(tiny_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    cell = study / "cells" / CELLS[0]
    rows = [json.loads(line) for line in (cell / "baseline" / "samples.jsonl").read_text().splitlines()]
    n, pair = len(rows), rows[0]["pair_id"]
    for r in rows:  # as --long-files skip-pairs leaves the first pair out
        if r["pair_id"] == pair:
            r.update(skipped=True, skipped_with_twin=r["label"] == 0)
    (cell / "baseline" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = json.loads((cell / "config.json").read_text())
    config["baseline"]["long_files"] = "skip-pairs"
    (cell / "config.json").write_text(json.dumps(config))
    md, _ = write_study(study)
    header, _, first, second = _rows(md.read_text(), "Files per cell (baseline/samples.jsonl)")
    assert header == ["#", "cell", "long files", "files kept", "files dropped", "pairs kept / dropped / split",
                      "generated answers"]
    half = n // 2
    assert first[2:] == ["skip-pairs", f"{n - 2} ({half - 1} vulnerable, {half - 1} secure)",
                         "2 (1 vulnerable, 1 secure)", f"{half - 1} / 1 / 0", "none"]  # the study ran without generation
    assert second[2:5] == ["windows", f"{n} ({half} vulnerable, {half} secure)", "0 (0 vulnerable, 0 secure)"]


def test_the_steering_table_gives_conditional_steering_pairs_precision_and_wall_time(tiny_study):
    md = (tiny_study / "study.md").read_text()
    header, _, *rows = _rows(md, "Conditional steering, pairs and cost per cell")
    assert [r[1] for r in rows] == CELLS
    for name, row in zip(CELLS, rows):
        cell_dir = tiny_study / "cells" / name
        summary = json.loads((cell_dir / "steer" / "summary.json").read_text())
        config = json.loads((cell_dir / "config.json").read_text())
        curve = json.loads((cell_dir / "probe" / "curve.json").read_text())
        v, lo, hi, mde = summary["deltas"]["conditional"]["accuracy"]
        assert row[header.index("conditional - unsteered accuracy")] == f"{v:.2f} [{lo:.2f}, {hi:.2f}]"
        assert row[4] == f"{mde:.2f}"
        pc = summary["conditions"]["steered"]["all"]["pairs_both_right"]
        assert row[header.index("P-C steered")] == f"{pc[0]:.2f} [{pc[1]:.2f}, {pc[2]:.2f}]"
        assert row[header.index("precision")] == config["dtype"] == "float32"
        assert row[header.index("wall time")] == f"{config['wall_seconds'] / 60:.1f} min"
        assert row[2] == f"{max(curve['auroc']):.2f} / {max(curve['control_auroc_max']):.2f}"
