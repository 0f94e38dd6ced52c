"""One progress helper (rich) for every loop a user waits for.

On a terminal it draws a bar. When stderr is a file or a CI log a bar would print nothing until the end,
so it prints plain lines instead: one when the loop starts, a count every 10% (at most one per 5 s), and
one when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
_prefixes: list[str] = []


@contextmanager
def prefixed(text: str) -> Iterator[None]:
    """Every log line and bar inside starts with `text: `, so a study's log says which cell each line is from."""
    _prefixes.append(text)
    try:
        yield
    finally:
        _prefixes.pop()


def _label(message: str) -> str:
    return ": ".join([*_prefixes, message])


def log(message: str) -> None:
    """One line on stderr (beside the progress bars): what a run reused, skipped or fell back to."""
    console.print(_label(message), highlight=False, soft_wrap=True)


@contextmanager
def status(message: str) -> Iterator[None]:
    """A step with no count (e.g. a dequantisation): a spinner on a terminal, else a line before and after."""
    if console.is_terminal:
        with console.status(_label(message)):
            yield
        return
    start = time.monotonic()
    log(f"{message} ...")
    yield
    log(f"{message}: done in {time.monotonic() - start:.0f} s")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; draws to stderr so stdout stays clean for tables and JSON."""
    description = _label(description)
    if not console.is_terminal:
        with _log_lines(description, total) as advance:
            yield advance
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance


@contextmanager
def _log_lines(description: str, total: int) -> Iterator[Callable[[int], None]]:
    start = last = time.monotonic()
    done = 0
    step = max(1, total // 10)
    console.print(f"{description}: 0/{total}", highlight=False, soft_wrap=True)

    def advance(n: int = 1) -> None:
        nonlocal done, last
        before, done = done, done + n
        now = time.monotonic()
        if done < total and done // step > before // step and now - last >= 5:
            last = now
            console.print(f"{description}: {done}/{total} ({now - start:.0f} s)", highlight=False, soft_wrap=True)

    yield advance
    console.print(f"{description}: {done}/{total} done in {time.monotonic() - start:.0f} s", highlight=False,
                  soft_wrap=True)
