"""How a steering vector applies itself by default: the operator, the strength `alpha`, the unit the strength
is counted in, and the token positions steered. A run saves the choice its experiment made on validation data;
a vector nobody chose for adds at every position, as a llama.cpp / repeng control vector does.

The choices are the enums of vulnsteer.options; text ("add", "sigma") is accepted and converted here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Operator, Scope, StrengthUnit


@dataclass(frozen=True)
class Application:
    """`operator` (add, amplify, ablate), `alpha`, `unit` (raw, sigma, mean_norm, unit) and `scope` (all, prompt,
    answer, generated, span); a bad value is a one-line `VulnsteerError`."""

    operator: Operator = Operator.ADD
    alpha: float = 1.0
    unit: StrengthUnit = StrengthUnit.RAW
    # Every position, as a llama.cpp / repeng control vector: a vector no experiment chose a scope for then adds
    # in `apply` what its GGUF export adds; a run's saved vectors carry the scope the experiment chose.
    scope: Scope = Scope.ALL

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: text is turned into its enum once, here
        set_(self, "operator", Operator(self.operator))
        set_(self, "unit", StrengthUnit(self.unit))
        set_(self, "scope", Scope(self.scope))
        set_(self, "alpha", _check_alpha(self.alpha))

    def as_json(self) -> dict[str, Any]:
        """The four settings as the vector's JSON stores them (enum values as text)."""
        return {"operator": self.operator.value, "alpha": self.alpha, "unit": self.unit.value,
                "scope": self.scope.value}


def _check_alpha(alpha: Any) -> float:
    """`alpha` as a float; a bool, text, NaN or inf is refused."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise VulnsteerError(f"steering alpha must be a finite number, got {alpha!r}")
    return float(alpha)
