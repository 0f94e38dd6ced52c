"""Per-sample passes run on first use (prompting/pass_slots.py), once, and shared by subsets and joins."""

from __future__ import annotations

import pytest

from vulnsteer.prompting.pass_slots import Passes, Slot


def _lazy(log: list[int], i: int) -> Slot:
    def make():
        log.append(i)
        return (f"pass{i}",)

    return Slot(make=make)


def test_a_deferred_slot_runs_once_when_first_read():
    log: list[int] = []
    passes = Passes([Slot(("ready",)), _lazy(log, 1), _lazy(log, 2)])
    assert log == [] and len(passes) == 3
    assert passes[0] == ("ready",) and log == []
    assert passes[2] == ("pass2",) and passes[2] == ("pass2",) and log == [2]
    assert list(passes) == [("ready",), ("pass1",), ("pass2",)] and log == [2, 1]


def test_subsets_and_joins_share_the_slots():
    log: list[int] = []
    passes = Passes([_lazy(log, 0), _lazy(log, 1)])
    sub = passes.subset([1])
    joined = Passes.concat([passes, Passes([Slot(())])])
    assert sub[0] == ("pass1",) and log == [1]
    assert joined[1] == ("pass1",) and log == [1], "a pass run through a subset is not run again"
    assert len(joined) == 3 and joined[2] == () and log == [1]
    assert joined[0] == ("pass0",) and passes[0] == ("pass0",) and log == [1, 0]


def test_a_slot_needs_its_passes_or_a_way_to_make_them():
    with pytest.raises(ValueError, match="needs its passes"):
        Slot()
