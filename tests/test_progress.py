"""Progress shows in a CI log too: plain lines when stderr is not a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from vulnsteer import progress


def test_not_on_a_terminal_progress_prints_start_and_end_lines(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=log, force_terminal=False))
    with progress.progress_bar("baseline passes", total=3) as advance:
        for _ in range(3):
            advance(1)
    text = log.getvalue()
    assert "baseline passes: 0/3" in text and "baseline passes: 3/3 done in" in text
