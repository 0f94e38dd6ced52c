"""Fuzzing the readers of user files: random and mutated pairs JSONL and control-vector GGUF files either load or
raise a one-line VulnsteerError, never another exception. Fixed budget and derandomized, so CI is deterministic."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vulnsteer.data.pairs import load_pairs_jsonl
from vulnsteer.errors import VulnsteerError
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

PAIR = {"id": "a", "cwe": "CWE-787", "language": "c", "group": "g", "vulnerable": "f(){}", "secure": "g(){}",
        "ground_truth": {"vulnerable": "bad", "secure": "ok"}, "flags": ["x"], "variant": "v"}  # fmt: skip
SAMPLE = {"id": 7, "cwe": 89, "language": "python", "code": "q()", "label": "secure", "pair_id": "p"}
VALID_JSONL = (json.dumps(PAIR) + "\n\n" + json.dumps(SAMPLE) + "\n").encode()

_counter = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _fresh(folder: Path, suffix: str, data: bytes) -> Path:
    # A new name per example: the GGUF reader memory-maps its file, and rewriting a mapped file in place
    # can crash the process rather than raise.
    path = folder / f"f{next(_counter)}{suffix}"
    path.write_bytes(data)
    return path


# --- byte mutations of a valid file ------------------------------------------------------------------

_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 16)),
    st.tuples(st.just("set"), st.integers(0, 1 << 20), st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x22, 0x5B, 0x0A])),
)


def _mutate(data: bytes, ops: list[tuple]) -> bytes:
    buf = bytearray(data)
    for kind, where, arg in ops:
        pos = where % (len(buf) + 1)
        if kind == "flip" and pos < len(buf):
            buf[pos] ^= arg
        elif kind == "set" and pos < len(buf):
            buf[pos] = arg
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = arg
        elif kind == "delete":
            del buf[pos : pos + arg]
    return bytes(buf)


def _loads_or_refuses(load, path: Path):
    """What `load` returned, or None when it refused with a one-line VulnsteerError; any other exception fails."""
    try:
        return load(path)
    except VulnsteerError as exc:
        text = str(exc)
        assert text and "\n" not in text, f"multi-line error for {path}: {text!r}"
        return None


def _usable_records(path: Path) -> None:
    """Loaded records must be usable downstream: unique string ids, code that hashes (valid UTF-8)."""
    records = _loads_or_refuses(load_pairs_jsonl, path)
    for rec in records or []:
        assert all(isinstance(x, str) for x in (rec.id, rec.group, rec.code, rec.cwe, rec.language))
        assert len(rec.sha256) == 64  # hashing encodes the code as UTF-8: a lone surrogate would raise here
        assert all(isinstance(f, str) for f in rec.flags) and rec.ground_truth.encode("utf-8") is not None
    assert records is None or len({r.id for r in records}) == len(records)


def _usable_vector(path: Path) -> None:
    """An imported vector must be usable for steering: finite directions."""
    sv = _loads_or_refuses(SteeringVector.from_gguf, path)
    assert sv is None or all(bool(torch.isfinite(d).all()) for d in sv.directions.values())


# --- pairs JSONL -------------------------------------------------------------------------------------

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["CWE-79", "cwe-0787", "vulnerable", "secure", "", " ", "\ud800", "1e999"]),
)  # fmt: skip
_json = st.recursive(
    _scalar, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)  # fmt: skip
_FIELDS = ["id", "cwe", "language", "group", "vulnerable", "secure", "code", "label", "pair_id", "ground_truth",
           "flags", "variant"]  # fmt: skip


# Raw JSON text no Python value dumps to: nesting past the recursion limit, numbers past the int-conversion limit.
_HOSTILE = ["[" * 50_000 + "]" * 50_000, '{"a":' * 5_000 + "1" + "}" * 5_000, "9" * 5_000, "-" + "1" * 4_400,
            "1e99999", "NaN", "-Infinity"]  # fmt: skip
_RAW = "\u0000raw\u0000"


@st.composite
def _line(draw) -> str:
    """A JSON object from a valid line with some fields replaced by arbitrary or hostile JSON, or removed."""
    obj = dict(draw(st.sampled_from([PAIR, SAMPLE])))
    raw = draw(st.sampled_from(_HOSTILE))
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=4)):
        obj[name] = draw(st.one_of(_json, st.just(_RAW)))
        if draw(st.integers(0, 3)) == 0:
            obj.pop(name, None)
    return json.dumps(obj, allow_nan=True).replace(json.dumps(_RAW), raw, 1)


@FUZZ
@given(ops=st.lists(_op, min_size=1, max_size=6))
def test_pairs_mutated_bytes(folder, ops):
    _usable_records(_fresh(folder, ".jsonl", _mutate(VALID_JSONL, ops)))


@FUZZ
@given(lines=st.lists(_line(), min_size=1, max_size=3))
def test_pairs_mutated_fields(folder, lines):
    _usable_records(_fresh(folder, ".jsonl", "\n".join(lines).encode("utf-8", "surrogatepass")))


@FUZZ
@given(data=st.binary(max_size=200))
def test_pairs_random_bytes(folder, data):
    _usable_records(_fresh(folder, ".jsonl", data))


# --- control-vector GGUF -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_gguf(tmp_path_factory) -> bytes:
    sv = SteeringVector({1: torch.arange(4.0), 2: -torch.arange(4.0)}, provenance=Provenance(model_id="m", cwe="CWE-89"))
    path = sv.to_gguf(tmp_path_factory.mktemp("gguf") / "v.gguf", model_hint="qwen2")
    return path.read_bytes()


@FUZZ
@given(ops=st.lists(_op, min_size=1, max_size=4))
def test_gguf_mutated_bytes(folder, valid_gguf, ops):
    _usable_vector(_fresh(folder, ".gguf", _mutate(valid_gguf, ops)))


@FUZZ
@given(data=st.binary(max_size=64))
def test_gguf_random_bytes_after_magic(folder, data):
    _usable_vector(_fresh(folder, ".gguf", gguf.GGUF_MAGIC.to_bytes(4, "little") + data))


def test_mutation_helper_changes_files():
    # The fuzz tests are only as good as their mutations: each kind must change a file.
    data = bytes(range(10))
    assert {_mutate(data, [op]) != data for op in [("flip", 3, 1), ("cut", 5, 0), ("insert", 2, b"x"),
                                                    ("delete", 0, 2), ("set", 1, 0xFF)]} == {True}  # fmt: skip
    assert np.frombuffer(_mutate(data, [("cut", 4, 0)]), dtype=np.uint8).tolist() == [0, 1, 2, 3]
