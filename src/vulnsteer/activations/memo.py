"""Prompt passes and generated answers kept in memory across the runs of one process, so that the cells of a
study that read the same prompts (one cell per readout, or a data set that is the test side of one cell and
the fit side of the next) share one pass and one generated answer per prompt.

Why in memory: the steering sweep and decoding re-enter each prompt's KV cache and its answer token's
recorded block calls (activations/passes.py). They are about 30 KB per prompt token for the 0.5B model, a
dozen GB for SVEN, too large for the on-disk activation cache, which keeps only the readouts and answer
logits. Without sharing, each of a study's three readouts would encode the same thousand SVEN prompts again.

The memo is off unless a caller opens it with `shared_passes()` (the study's local executor does), so a
notebook that runs one experiment does not keep gigabytes alive afterwards. Its size is bounded: the least
recently used passes are dropped past the budget and computed again when asked for. Sharing is exact: a
pass is the same tensors whichever cell asks, and nothing that reads a pass writes into it (the sweep
restores each KV cache it appends to; decoding merges copies), which tests/test_memo.py checks by comparing
a study's cells with and without the memo.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch-free at import: the study planner imports this module before any option check
    from vulnsteer.activations.passes import PromptPass

# Of the machine's memory, what the memo may hold by default: one data set's passes (SVEN's at a 512-token
# budget are about 10 GB for the 0.5B model) beside the model and the cell that is running.
DEFAULT_FRACTION = 0.5


def _nbytes(obj: Any, seen: set[int]) -> int:
    """Bytes of the tensors reachable from `obj` (each storage counted once)."""
    import torch

    if isinstance(obj, torch.Tensor):
        key = obj.untyped_storage().data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return obj.untyped_storage().nbytes()
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        return sum(_nbytes(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_nbytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return _nbytes(vars(obj), seen)
    return 0


def memory_budget(fraction: float = DEFAULT_FRACTION) -> int:
    """`fraction` of this machine's physical memory, in bytes."""
    return int(fraction * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


class PassMemo:
    """Least-recently-used prompt passes up to `budget` bytes, and generated answers (small, all kept)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.hits = 0
        self._passes: OrderedDict[tuple, tuple[PromptPass, int]] = OrderedDict()
        self._answers: dict[tuple, Any] = {}

    def get(self, key: tuple) -> PromptPass | None:
        found = self._passes.get(key)
        if found is None:
            return None
        self._passes.move_to_end(key)
        self.hits += 1
        return found[0]

    def put(self, key: tuple, state: PromptPass) -> None:
        if key in self._passes:
            return
        size = _nbytes(state, set())
        if size > self.budget:
            return
        self._passes[key] = (state, size)
        self.used += size
        while self.used > self.budget:
            _, (_, dropped) = self._passes.popitem(last=False)
            self.used -= dropped

    def answer(self, key: tuple) -> Any:
        return self._answers.get(key)

    def keep_answer(self, key: tuple, answer: Any) -> None:
        self._answers[key] = answer


_ACTIVE: PassMemo | None = None


def active_memo() -> PassMemo | None:
    """The memo `shared_passes` opened, or None (no sharing)."""
    return _ACTIVE


@contextmanager
def shared_passes(budget: int | None = None) -> Iterator[PassMemo]:
    """Share prompt passes and generated answers among the runs inside the block (budget: bytes of passes,
    default half the machine's memory); everything is released when the block ends."""
    global _ACTIVE
    outer = _ACTIVE
    _ACTIVE = PassMemo(memory_budget() if budget is None else budget)
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = outer
