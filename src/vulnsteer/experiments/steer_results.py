"""What the steering experiment produces: each fold's chosen configuration (`Choice`), each test sample's
scores under every condition (`TestRow`), a fold's results (`FoldResult`, what a resumed run reads back) and
the whole experiment's (`SteerResult`); experiments/steer.py fills them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vulnsteer.evaluation.splits import CrossFit, TransferSplit
from vulnsteer.options import Method, Operator
from vulnsteer.vectors.steering_vector import SteeringVector


@dataclass(frozen=True)
class Choice:
    """The configuration a fold's validation data picked."""

    fold: int
    layer: int
    method: Method
    operator: Operator
    alpha: float
    val_metrics: dict[str, float]

    def label(self) -> str:
        return f"L{self.layer} {self.method.value} {self.operator.value}:{self.alpha:g}"


@dataclass(frozen=True)
class TestRow:
    """One test sample's score under every condition (log P(yes) - log P(no) at the answer position)."""

    __test__ = False  # not a pytest class

    index: int
    id: str
    fold: int
    cwe: str
    label: int
    group: str
    pair_id: str | None
    config: str
    vector_cwe: str
    baseline: float
    steered: float
    opposite: float
    random: tuple[float, ...]
    kl_answer: float
    kl_answer_random: float
    probe: float = float("nan")  # a probe fit on the training folds, its layer chosen on validation
    probe_layer: int = -1
    calibrated: float = float("nan")  # the baseline score minus its threshold tuned on validation
    amplify: float = float("nan")  # the best amplify configuration on validation (NaN: no amplify strengths)
    amplify_config: str = ""
    conditional: float = float("nan")  # steered if the condition selected the sample, else baseline (conditional.py)
    selected: bool | None = None  # None: conditional steering not run


@dataclass
class FoldResult:
    """Everything one fold produced: what a resumed run reads back instead of recomputing the fold."""

    sweep: list[dict]
    choice: Choice
    vectors: dict[str, SteeringVector]
    test: list[TestRow]


class FoldStore(Protocol):
    def load(self, fold: int) -> FoldResult | None: ...

    def save(self, fold: int, result: FoldResult) -> None: ...


@dataclass
class SteerResult:
    folds: CrossFit | TransferSplit
    sweep: list[dict] = field(default_factory=list)  # one CSV row per (validation sample, configuration)
    choices: list[Choice] = field(default_factory=list)
    # Per fold: CWE (or pooled) -> the chosen vector, one layer, set to apply itself as chosen.
    vectors: list[dict[str, SteeringVector]] = field(default_factory=list)
    test: list[TestRow] = field(default_factory=list)
