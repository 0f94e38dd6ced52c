"""Application: how a vector applies itself, held as the enums of vulnsteer.options."""

from __future__ import annotations

import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Operator, Scope, StrengthUnit
from vulnsteer.vectors.application import Application


def test_text_is_turned_into_enums_once() -> None:
    a = Application("amplify", 3, "sigma", "answer")  # type: ignore[arg-type]
    assert a.operator is Operator.AMPLIFY and a.unit is StrengthUnit.SIGMA and a.scope is Scope.ANSWER
    assert a.alpha == 3.0 and type(a.alpha) is float
    assert Application() == Application(Operator.ADD, 1.0, StrengthUnit.RAW, Scope.ALL)


def test_json_holds_plain_text() -> None:
    got = Application(Operator.ABLATE, -2.0, StrengthUnit.MEAN_NORM, Scope.SPAN).as_json()
    assert got == {"operator": "ablate", "alpha": -2.0, "unit": "mean_norm", "scope": "span"}
    assert all(type(v) in (str, float) for v in got.values())  # no enum reaches the file


@pytest.mark.parametrize("kwargs, match", [
    (dict(operator="steer"), "unknown operator 'steer'; use one of add, amplify, ablate"),
    (dict(unit="furlongs"), "unknown strengthunit"),
    (dict(scope="code"), "unknown scope 'code'"),
    (dict(alpha="8"), "alpha must be a finite number"),
    (dict(alpha=True), "alpha"),
    (dict(alpha=float("inf")), "alpha"),
])
def test_bad_values_are_one_line_errors(kwargs, match) -> None:
    with pytest.raises(VulnsteerError, match=match):
        Application(**kwargs)


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        Application().alpha = 2.0  # type: ignore[misc]
