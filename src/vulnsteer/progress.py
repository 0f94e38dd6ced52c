"""One progress helper (rich) for every loop a user waits for.

On a terminal it draws a bar. When stderr is a file or a CI log a bar would print nothing until the end,
so it prints plain lines instead: one when the loop starts, one at least every 10 s while it runs (also while
no item finishes: a timer prints then), each with the rate and the time left, and one when it ends.
"""

from __future__ import annotations

import threading
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


EVERY_S = 10.0  # the longest a loop stays silent in a log


def _silent(_n: int = 1) -> None:
    """`advance` of a loop that shows no progress."""


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
def progress_bar(description: str, total: int, unit: str = "", show: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; draws to stderr so stdout stays clean for tables and JSON. `unit` names what is
    counted in log lines ("tokens"); show=False yields an `advance` that shows nothing."""
    if not show:
        yield _silent
        return
    description = _label(description)
    if not console.is_terminal:
        with _log_lines(description, total, unit) as advance:
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
def _log_lines(description: str, total: int, unit: str = "") -> Iterator[Callable[[int], None]]:
    start = time.monotonic()
    state = {"done": 0, "last": start}
    lock = threading.Lock()
    unit = f" {unit}" if unit else ""

    def line(now: float) -> None:
        done, elapsed = state["done"], now - start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"ETA {(total - done) / rate:.0f} s" if rate > 0 else "ETA unknown"
        console.print(f"{description}: {done}/{total}{unit} ({elapsed:.0f} s, {rate:.3g}{unit or ' items'}/s, {eta})",
                      highlight=False, soft_wrap=True)
        state["last"] = now

    def advance(n: int = 1) -> None:
        with lock:
            state["done"] += n
            now = time.monotonic()
            if state["done"] < total and now - state["last"] >= EVERY_S:
                line(now)

    stop = threading.Event()

    def tick() -> None:  # a loop whose items each take longer than EVERY_S still says it is alive
        while not stop.wait(EVERY_S / 4):
            with lock:
                now = time.monotonic()
                if now - state["last"] >= EVERY_S:
                    line(now)

    console.print(f"{description}: 0/{total}{unit}", highlight=False, soft_wrap=True)
    timer = threading.Thread(target=tick, daemon=True)
    timer.start()
    try:
        yield advance
    finally:
        stop.set()
        timer.join()
    console.print(f"{description}: {state['done']}/{total}{unit} done in {time.monotonic() - start:.0f} s",
                  highlight=False, soft_wrap=True)
