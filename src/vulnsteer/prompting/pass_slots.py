"""Each sample's resumable passes (one per window of its code), run when a later stage first asks for them.

Why lazy: the steering sweep, decoding and the side-by-side answers need a prompt's KV cache
(activations/passes.py), which is too large to keep on disk; but what they compute from it is kept
(activations/cache.py, `result_key`). A rerun whose readouts, steered scores and answers are all stored
therefore needs no pass at all, and a sample's passes run only where something it needs is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from vulnsteer.activations.passes import PromptPass

Windows = tuple[PromptPass, ...]


class Slot:
    """One sample's passes: given, or made on first use and then kept (shared by every `Passes` holding it)."""

    def __init__(self, value: Windows | None = None, make: Callable[[], Windows] | None = None) -> None:
        if value is None and make is None:
            raise ValueError("a Slot needs its passes or a way to make them")
        self._value, self._make = value, make

    def get(self) -> Windows:
        if self._value is None:
            assert self._make is not None
            self._value, self._make = self._make(), None
        return self._value


class Passes(Sequence[Windows]):
    """A read-only sequence of per-sample passes; `passes[i]` runs sample i's passes if they were deferred."""

    def __init__(self, slots: Iterable[Slot]) -> None:
        self._slots = list(slots)

    def __len__(self) -> int:
        return len(self._slots)

    def __getitem__(self, i):  # an int only: a slice would hide which slots run
        return self._slots[i].get()

    def __iter__(self) -> Iterator[Windows]:
        return (s.get() for s in self._slots)

    def subset(self, idx: Sequence[int]) -> Passes:
        """The slots of `idx`, shared: a pass run through the subset is not run again through this one."""
        return Passes(self._slots[i] for i in idx)

    @staticmethod
    def concat(parts: Sequence[Passes]) -> Passes:
        return Passes(s for p in parts for s in p._slots)
