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


def test_lines_inside_prefixed_name_the_cell(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=log, force_terminal=False, width=200))
    with progress.prefixed("cell 3/15 m__answer__sven__crossfit"):
        progress.log("probe: reused from the interrupted run")
        with progress.progress_bar("baseline passes", total=1) as advance:
            advance(1)
    progress.log("after")
    lines = log.getvalue().splitlines()
    assert lines[0] == "cell 3/15 m__answer__sven__crossfit: probe: reused from the interrupted run"
    assert lines[1] == "cell 3/15 m__answer__sven__crossfit: baseline passes: 0/1"
    assert lines[-1] == "after"


def test_a_slow_loop_prints_a_line_every_period_with_rate_and_eta_even_between_items(monkeypatch):
    import re
    import time

    log = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=log, force_terminal=False, width=200))
    monkeypatch.setattr(progress, "EVERY_S", 0.2)
    with progress.progress_bar("generating", total=4, unit="tokens") as advance:
        time.sleep(0.5)  # nothing finished yet: the timer still prints
        advance(2)
        time.sleep(0.5)
    lines = log.getvalue().splitlines()
    assert lines[0] == "generating: 0/4 tokens" and lines[-1].startswith("generating: 2/4 tokens done in")
    waiting = [x for x in lines if x.startswith("generating: 0/4 tokens (")]
    moving = [x for x in lines if x.startswith("generating: 2/4 tokens (")]
    assert waiting and all(x.endswith("0 tokens/s, ETA unknown)") for x in waiting), lines
    assert moving and all(re.search(r"\d tokens/s, ETA \d+ s\)$", x) for x in moving), lines
    assert len(lines) <= 2 + 1.5 / 0.2, "at most one line per period"


def test_show_false_prints_nothing(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=log, force_terminal=False))
    with progress.progress_bar("probing layers", total=2, show=False) as advance:
        advance(2)
    assert log.getvalue() == ""


def test_hashing_a_large_file_off_a_terminal_logs_its_progress(monkeypatch, tmp_path):
    from vulnsteer import io as vio

    log = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=log, force_terminal=False, width=200))
    monkeypatch.setattr(vio, "_PROGRESS_MIN_BYTES", 1 << 20)  # a model-sized file, scaled down
    path = tmp_path / "weights.gguf"
    path.write_bytes(b"\1" * (3 << 20))
    vio.sha256_file(path)
    text = log.getvalue()
    assert "hashing weights.gguf (MiB): 0/3" in text and "hashing weights.gguf (MiB): 3/3 done in" in text
