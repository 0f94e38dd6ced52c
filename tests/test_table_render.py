"""Tables rendered to the terminal, markdown and HTML (test input shaped like docs/RUN_FOLDER.md, not results)."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from test_tables import published, steer_summary, summary_by_cwe
from vulnsteer.report.table_render import baseline_table, headline_table, to_html, to_markdown, to_rich
from vulnsteer.report.tables import CONDITIONS, TableData, baseline_data, headline_data, per_cwe_data


def to_markdown_of(build, *args):
    return to_markdown(build(*args))


def md_rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in md.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("render", [
    lambda: to_markdown_of(baseline_data, {"score": summary_by_cwe(0.6)}, published(3)),
    lambda: to_markdown_of(headline_data, steer_summary()),
    lambda: to_markdown_of(per_cwe_data, steer_summary(), published(10)),
])
def test_markdown_tables_are_well_formed(render):
    md = render()
    rows = md_rows(md)
    assert len(rows) >= 3
    assert all(len(r) == len(rows[0]) for r in rows)
    assert all(re.fullmatch(r":?-{3}:?", c) for c in rows[1])
    assert rows[1][0] == ":---" and rows[1][1] == "---:"  # names left, numbers right


def test_markdown_escapes_pipes_in_cells():
    pub = published(1)
    pub["models"]["a|b"] = pub["models"].pop("model-0")
    rows = md_rows(to_markdown_of(baseline_data, {"score": summary_by_cwe(0.6)}, pub))
    assert rows[0][-1] == "pub: a\\|b" and len({len(r) for r in rows}) == 1


def test_rich_tables_render_the_same_strings():
    console = Console(record=True, width=250)
    for table in (baseline_table({"score": summary_by_cwe(0.62)}, published(2)), headline_table(steer_summary()),
                  to_rich(per_cwe_data(steer_summary(), None))):
        console.print(table)
    text = console.export_text()
    # the interval goes on the line below its point estimate, as the same strings
    assert re.search(r"0\.62 │[^\n]*\n[^\n]*\[0\.50, 0\.75\]", text), text
    assert "random-direction control" in text and "n/a" in text
    assert headline_table(steer_summary()).row_count == len(CONDITIONS)


def test_console_tables_fit_100_columns_without_clipping():
    console = Console(width=100, record=True)
    console.print(baseline_table({"score": summary_by_cwe(0.6)}, published(10)))
    console.print(headline_table(steer_summary()))
    text = console.export_text()
    assert "…" not in text, "no cell may be clipped"
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "report.md shows all" in " ".join(text.split())


def test_html_intervals_never_wrap_and_linked_cells_link():
    data = TableData("t", ["a", "b"], [["x", "0.62 [0.50, 0.75] MDE 0.10"]], links={(0, 0): "cell1/report"})
    page = to_html(data)
    assert '<span class="ci">0.62 [0.50, 0.75] MDE 0.10</span>' in page
    assert '<a href="cell1/report.html">x</a>' in page and "[x](cell1/report.md)" in to_markdown(data)
