"""The steering experiment's report sections, read from a fabricated run folder (test input, not results)."""

from __future__ import annotations

from test_document import write
from vulnsteer.experiments.run_folder.reader import Run
from vulnsteer.report.steer_sections import search_note


def test_the_curves_say_when_the_sweep_scored_part_of_the_grid(tmp_path):
    write(tmp_path / "config.json", {"steer": {"search": "grid", "search_top": 3, "search_subsample": None}})
    assert search_note(Run(tmp_path)) == ""
    write(tmp_path / "config.json", {"steer": {"search": "coarse-fine", "search_top": 3, "search_subsample": 8}})
    note = search_note(Run(tmp_path))
    assert "--search coarse-fine, top 3; --search-subsample 8" in note
