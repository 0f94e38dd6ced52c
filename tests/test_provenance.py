"""Provenance: where a vector came from, checked on construction."""

from __future__ import annotations

import json

import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Readout
from vulnsteer.vectors.provenance import Provenance


def test_fields_are_normalised() -> None:
    extra = {"fold": 1}
    p = Provenance(method="caa", position="code-mean", record_ids=["a", "b"], extra=extra)  # type: ignore[arg-type]
    assert p.position is Readout.CODE_MEAN and p.record_ids == ("a", "b")
    extra["fold"] = 2
    assert p.extra == {"fold": 1}, "the caller's dict is copied"
    assert p.created.endswith("+00:00") and Provenance().cwe == "pooled"


def test_json_holds_plain_values() -> None:
    got = Provenance(method="pca", position=Readout.CODE_LAST, record_ids=("r",), created="2026-01-01").as_json()
    assert got["position"] == "code-last" and type(got["position"]) is str and got["record_ids"] == ["r"]
    assert json.loads(json.dumps(got)) == got


@pytest.mark.parametrize("kwargs, match", [
    (dict(position="middle"), "unknown readout 'middle'"),
    (dict(model_hash=7), "model_hash must be a string"),
    (dict(created=None), "created must be a string"),
    (dict(record_ids="abc"), "record_ids must be a list of strings"),
    (dict(record_ids=[1]), "record_ids"),
    (dict(extra=[1]), "extra must be a dict"),
])
def test_bad_values_are_one_line_errors(kwargs, match) -> None:
    with pytest.raises(VulnsteerError, match=match):
        Provenance(**kwargs)
