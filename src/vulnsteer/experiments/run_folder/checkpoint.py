"""Stage outputs an interrupted run can reuse: each finished fold of the steering experiment is kept under
steer/folds/ (vectors as safetensors, the rest as JSON written last, atomically), so a rerun into the same
--out picks up at the first unfinished fold and gives the same numbers as an uninterrupted run.

These files are internal: NaN stays NaN (Python's JSON), so a reused fold is bit-identical to a computed one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from vulnsteer.experiments.run_folder.run_dir import RunDir, sha256_or_none
from vulnsteer.experiments.steer_results import Choice, FoldResult, TestRow
from vulnsteer.io import atomic_write_text
from vulnsteer.options import Method, Operator
from vulnsteer.progress import log
from vulnsteer.vectors.steering_vector import SteeringVector

FOLDS = "steer/folds"


@dataclass
class RunFoldStore:
    """`FoldStore` on a run folder: always saves; loads only when the run resumes an interrupted one."""

    run: RunDir

    def save(self, fold: int, result: FoldResult) -> None:
        folder = self.run.path / FOLDS
        for key, vector in result.vectors.items():
            vector.save(folder / f"fold{fold}-{key}")
        c = result.choice
        files = {p.name: sha256_or_none(p) for key in result.vectors for p in sorted(folder.glob(f"fold{fold}-{key}.*"))}
        payload = {"sweep": result.sweep, "test": [asdict(r) for r in result.test], "vector_keys": sorted(result.vectors),
                   "files": files,
                   "choice": dict(fold=c.fold, layer=c.layer, method=c.method.value, operator=c.operator.value,
                                  alpha=c.alpha, val_metrics=c.val_metrics)}
        atomic_write_text(folder / f"fold{fold}.json", json.dumps(payload), fsync=True)

    def load(self, fold: int) -> FoldResult | None:
        path = self.run.path / FOLDS / f"fold{fold}.json"
        if not self.run.resumed or not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            damaged = [n for n, sha in payload["files"].items() if sha256_or_none(self.run.path / FOLDS / n) != sha]
            if damaged:  # a vector file changed since the fold was saved: recompute rather than trust it
                raise ValueError(f"{', '.join(damaged)} damaged")
            c = payload["choice"]
            choice = Choice(c["fold"], c["layer"], Method(c["method"]), Operator(c["operator"]), c["alpha"],
                            c["val_metrics"])
            vectors = {k: SteeringVector.load(self.run.path / FOLDS / f"fold{fold}-{k}") for k in payload["vector_keys"]}
            test = [TestRow(**{**r, "random": tuple(r["random"])}) for r in payload["test"]]
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is recomputed, never trusted
            log(f"steering fold {fold}: the saved result is unreadable or damaged ({type(exc).__name__}: {exc}); "
                "computing it again")
            return None
        log(f"steering fold {fold}: reused from the interrupted run ({len(test)} test samples)")
        return FoldResult(payload["sweep"], choice, vectors, test)
