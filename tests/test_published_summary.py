"""Published LLMs beside our numbers: with --cwe, their "all" row covers the same files as ours."""

from __future__ import annotations

from vulnsteer.experiments.baseline import published_summary


def test_cwe_restriction_applies_to_the_published_all_row(data_root):
    full = published_summary(data_root, "S1", ["hand-crafted"])
    some = published_summary(data_root, "S1", ["hand-crafted"], ["CWE-787", "CWE-89"])
    assert full is not None and some is not None
    model = "gpt-4"
    assert full["models"][model]["all"]["n"] == 48
    assert some["models"][model]["all"]["n"] == 12
    assert set(some["models"][model]) == {"all", "CWE-787", "CWE-89"}
