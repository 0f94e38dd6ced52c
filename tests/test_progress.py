"""Progress shows in a CI log too: plain lines when stderr is not a terminal."""

from __future__ import annotations

from vulnsteer import progress


def test_not_on_a_terminal_progress_prints_start_and_end_lines(capsys, monkeypatch):
    monkeypatch.setattr(progress.console, "_force_terminal", False)
    monkeypatch.setattr(progress.console, "file", __import__("sys").stderr)
    with progress.progress_bar("baseline passes", total=3) as advance:
        for _ in range(3):
            advance(1)
    err = capsys.readouterr().err
    assert "baseline passes: 0/3" in err and "baseline passes: 3/3 done in" in err
