"""Steering folds kept under steer/folds/ for a resumed run: reused while intact, recomputed once damaged."""

from __future__ import annotations

import json

import torch

from vulnsteer.experiments.run_folder.checkpoint import RunFoldStore
from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.experiments.steer_results import Choice, FoldResult, TestRow
from vulnsteer.options import Method, Operator
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector


def _fold() -> FoldResult:
    vector = SteeringVector(Directions({1: torch.nn.functional.normalize(torch.arange(1.0, 9.0), dim=0)}, sigma={1: 2.0}),
                            Application(operator="add", alpha=4.0), Provenance(method="caa"))
    row = TestRow(index=0, id="a", fold=0, cwe="CWE-89", label=1, group="g", pair_id="p", config="L1 caa add+4",
                  vector_cwe="pooled", baseline=0.5, steered=1.0, opposite=0.1, random=(0.4,), kl_answer=0.01,
                  kl_answer_random=0.0)
    return FoldResult([{"fold": 0, "score": 1.0}], Choice(0, 1, Method.CAA, Operator.ADD, 4.0, {"auroc": 0.6}),
                      {"pooled": vector}, [row])


def test_an_intact_fold_is_reused_and_a_damaged_vector_is_recomputed(tmp_path):
    run = RunDir.create(tmp_path / "r", "run", {})
    RunFoldStore(run).save(0, _fold())
    run.finish("interrupted")
    resumed = RunDir.create(tmp_path / "r", "run", {})
    assert resumed.resumed
    loaded = RunFoldStore(resumed).load(0)
    assert loaded is not None and [(r.id, r.steered, r.random) for r in loaded.test] == [("a", 1.0, (0.4,))]
    # the vector's sidecar edited (still valid JSON, its tensors intact): its scale is not trusted
    sidecar = tmp_path / "r" / "steer" / "folds" / "fold0-pooled.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "sigma": {"1": 3.0}}))
    assert RunFoldStore(resumed).load(0) is None
