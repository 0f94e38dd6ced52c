"""Passes and generated answers shared between a study's cells (activations/memo.py): bounded, and exact:
cells that share them write what cells run alone write."""

from __future__ import annotations

import pytest

from conftest import STUDY_TOML
from vulnsteer.activations.memo import PassMemo, active_memo, shared_passes
from vulnsteer.api import run_cell
from vulnsteer.experiments.study import plan_study
from vulnsteer.experiments.study_spec import load_spec

OUTPUTS = ("baseline/samples.jsonl", "baseline/summary.json", "probe/curve.json", "steer/test.jsonl",
           "steer/sweep.csv", "steer/summary.json")


class _Pass:  # stands in for a PromptPass: the memo only measures the tensors it holds
    def __init__(self, n: int) -> None:
        import torch

        self.keys = torch.zeros(n, dtype=torch.uint8)


def test_the_least_recently_used_passes_go_past_the_budget():
    memo = PassMemo(budget=250)
    a, b, c = _Pass(100), _Pass(100), _Pass(100)
    memo.put(("a",), a)  # type: ignore[arg-type]
    memo.put(("b",), b)  # type: ignore[arg-type]
    assert memo.get(("a",)) is a  # a is now the most recently used
    memo.put(("c",), c)  # type: ignore[arg-type]
    assert memo.get(("b",)) is None and memo.get(("a",)) is a and memo.get(("c",)) is c
    assert memo.used == 200
    memo.put(("huge",), _Pass(1000))  # type: ignore[arg-type]
    assert memo.get(("huge",)) is None and memo.used == 200, "a pass over the whole budget is not kept"


def test_the_memo_is_open_only_inside_its_block():
    assert active_memo() is None
    with shared_passes(budget=10) as memo:
        assert active_memo() is memo
    assert active_memo() is None


@pytest.fixture(scope="module")
def generating_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "study.toml"
    path.write_text(STUDY_TOML.replace("generate = false", "generate = true\nmax_new_tokens = 6"))
    return load_spec(path)


def test_cells_that_share_passes_write_what_cells_run_alone_write(generating_spec, data_root, tmp_path):
    shared = plan_study(generating_spec, tmp_path / "shared", data_root, tmp_path / "cache1")
    with shared_passes() as memo:
        for job in shared.todo:
            run_cell(job)
    n_files = len((shared.todo[0].out / "baseline/samples.jsonl").read_text().splitlines())
    assert memo.hits >= n_files, "the second readout's cell re-encoded the prompts"
    alone = plan_study(generating_spec, tmp_path / "alone", data_root, tmp_path / "cache2")
    for job in alone.todo:
        run_cell(job)
    for a, b in zip(shared.todo, alone.todo):
        for name in OUTPUTS:
            assert (a.out / name).read_text() == (b.out / name).read_text(), f"{a.cell.name}: {name}"
