"""llama.cpp control-vector GGUF: file structure as llama.cpp's loader expects it, round trip, refusals."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from vulnsteer.errors import DataError, VulnsteerError
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector


def make() -> SteeringVector:
    gen = torch.Generator().manual_seed(0)
    return SteeringVector(
        Directions({1: torch.randn(16, generator=gen), 5: torch.randn(16, generator=gen)},
                   mu={1: torch.randn(16, generator=gen), 5: torch.randn(16, generator=gen)}),
        Application(unit="unit"),
        Provenance(method="pca", position="answer", model_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
                   model_hash="sha256:abc", template_id="S1", record_ids=["r1", "r2"], dataset_hash="h", cwe="CWE-89"),
    )


def field_value(reader: gguf.GGUFReader, key: str):
    f = reader.get_field(key)
    assert f is not None, key
    part = f.parts[f.data[0]]
    return bytes(part).decode() if f.types[0] == gguf.GGUFValueType.STRING else part[0].item()


def test_written_file_has_llama_cpp_structure(tmp_path: Path) -> None:
    sv = make()
    path = sv.to_gguf(tmp_path / "v.gguf", model_hint="qwen2")
    reader = gguf.GGUFReader(str(path))
    assert field_value(reader, "general.architecture") == "controlvector"
    assert field_value(reader, "controlvector.model_hint") == "qwen2"
    assert field_value(reader, "controlvector.layer_count") == 2
    # vulnsteer layer L (output of 0-based block L) is llama.cpp's direction.L: no shift.
    assert [t.name for t in reader.tensors] == ["direction.1", "direction.5"]
    for t in reader.tensors:
        assert t.tensor_type == gguf.GGMLQuantizationType.F32
        assert list(t.shape) == [16]
        # the additive offset the vector applies: alpha x unit length x direction
        offset = sv.at_layer(int(t.name.split(".")[1])).interventions(1.0, "add")[0].direction
        assert np.array_equal(np.asarray(t.data), offset.numpy())


def test_round_trip_keeps_directions_and_provenance(tmp_path: Path) -> None:
    sv = make()
    back = SteeringVector.from_gguf(sv.to_gguf(tmp_path / "v.gguf", model_hint="qwen2"))
    assert back.layers == sv.layers
    for a, b in zip(back.interventions(), sv.interventions(1.0, "add")):
        torch.testing.assert_close(a.alpha * a.direction, b.alpha * b.direction)  # adds what the original adds
    assert back.directions.mu is None  # llama.cpp can only add; mu does not travel
    meta, orig = back.metadata(), sv.metadata()
    for key in ("method", "position", "model_id", "model_hash", "template_id", "record_ids", "dataset_hash", "cwe"):
        assert meta[key] == orig[key], key
    assert meta["extra"]["gguf_alpha"] == 1.0 and meta["extra"]["gguf_model_hint"] == "qwen2"


def test_alpha_is_baked_into_the_tensors(tmp_path: Path) -> None:
    sv = make()
    back = SteeringVector.from_gguf(sv.to_gguf(tmp_path / "v.gguf", "qwen2", alpha=-2.5))
    torch.testing.assert_close(back.interventions()[1].direction, sv.interventions(-2.5, "add")[1].direction * -2.5)
    assert back.provenance.extra["gguf_alpha"] == -2.5


def test_refuses_layer_zero(tmp_path: Path) -> None:
    sv = SteeringVector({0: torch.ones(4), 3: torch.ones(4)})
    with pytest.raises(VulnsteerError, match="block 0"):
        sv.to_gguf(tmp_path / "v.gguf", "qwen2")


def test_states_the_scope_it_assumes_and_refuses_another(tmp_path: Path) -> None:
    """llama.cpp adds a control vector at every token: the file says so, and a vector set to steer only the
    answer position (what `vulnsteer run` measures by default) is not silently exported as if it did."""
    reader = gguf.GGUFReader(str(make().to_gguf(tmp_path / "v.gguf", "qwen2")))
    assert field_value(reader, "vulnsteer.scope") == "all"
    answer_only = make().with_application("add", 4.0, scope="answer")
    with pytest.raises(VulnsteerError, match=r"scope 'answer'.*every token.*scope='all'"):
        answer_only.to_gguf(tmp_path / "a.gguf", "qwen2")
    assert not (tmp_path / "a.gguf").exists()
    answer_only.with_application("add", 4.0, scope="all").to_gguf(tmp_path / "a.gguf", "qwen2")
    assert (tmp_path / "a.gguf").is_file()


def write_foreign(path: Path, arch: str = "controlvector", dtype=np.float32) -> Path:
    """A file as repeng's export_gguf writes it (no vulnsteer keys)."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_string(f"{arch}.model_hint", "llama")
    w.add_uint32(f"{arch}.layer_count", 2)
    w.add_tensor("direction.3", np.arange(8, dtype=dtype))
    w.add_tensor("direction.4", -np.arange(8, dtype=dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_foreign_file_gets_defaults(tmp_path: Path) -> None:
    sv = SteeringVector.from_gguf(write_foreign(tmp_path / "r.gguf"))
    assert sv.layers == [3, 4] and sv.d_model == 8
    (iv,) = sv.at_layer(4).interventions()  # applied as stored: unit raw, alpha 1
    torch.testing.assert_close(iv.alpha * iv.direction, -torch.arange(8, dtype=torch.float32))
    p = sv.provenance
    assert p.model_id == "llama" and p.method == "" and p.cwe == "" and sv.directions.mu is None
    assert p.record_ids == () and p.extra["source"] == "gguf"


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        SteeringVector.from_gguf(tmp_path / "missing.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(DataError, match="not a readable GGUF"):
        SteeringVector.from_gguf(tmp_path / "junk.gguf")
    with pytest.raises(DataError, match="not a control vector"):
        SteeringVector.from_gguf(write_foreign(tmp_path / "m.gguf", arch="llama"))
    with pytest.raises(DataError, match="F16"):
        SteeringVector.from_gguf(write_foreign(tmp_path / "h.gguf", dtype=np.float16))


# --- faults: cut-short files, NaN/inf -------------------------------------------------------------


def _header_end(path: Path) -> int:
    """Offset where the tensor data starts: everything before it is header (KV pairs, tensor infos)."""
    return int(gguf.GGUFReader(str(path)).data_offset)


def test_file_cut_short_inside_its_header_is_a_one_line_data_error(tmp_path: Path) -> None:
    full = make().to_gguf(tmp_path / "v.gguf", model_hint="qwen2")
    data, end = full.read_bytes(), _header_end(full)
    cut = tmp_path / "cut.gguf"
    for n in sorted({1, 4, 8, 16, 23, 24, 40, end // 3, end // 2, end - 9, end - 1}):
        cut.write_bytes(data[:n])
        with pytest.raises(DataError) as err:
            SteeringVector.from_gguf(cut)
        text = str(err.value)
        assert text.startswith(str(cut)) and "\n" not in text and "cut short" in text, (n, text)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_export_refuses_nan_or_inf(tmp_path: Path, bad: float) -> None:
    sv = make()
    sv.directions[5][3] = bad
    with pytest.raises(VulnsteerError, match="layer 5 .*NaN or inf"):
        sv.to_gguf(tmp_path / "v.gguf", "qwen2")
    assert not (tmp_path / "v.gguf").exists()


def test_export_refuses_alpha_that_overflows_to_inf(tmp_path: Path) -> None:
    sv = SteeringVector({2: torch.full((4,), 1e18)})
    with pytest.raises(VulnsteerError, match="NaN or inf"):
        sv.to_gguf(tmp_path / "v.gguf", "qwen2", alpha=1e30)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_import_refuses_nan_or_inf(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "bad.gguf"
    w = gguf.GGUFWriter(str(path), "controlvector")
    w.add_uint32("controlvector.layer_count", 1)
    w.add_tensor("direction.3", np.array([0.0, bad, 1.0, 2.0], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(DataError, match=f"{path}: tensor direction.3 holds NaN or inf"):
        SteeringVector.from_gguf(path)


def test_a_gguf_written_before_the_split_imports(tmp_path: Path) -> None:
    """vulnsteer.metadata as the flat JSON the code before the three-part vector wrote, keys set by hand."""
    import json

    from vulnsteer.options import Readout

    meta = {"method": "caa", "position": "code-last", "model_id": "qwen2.5-coder-0.5b@1d9614638d18",
            "model_hash": "1d96", "template_id": "S1", "record_ids": ["a", "b"], "dataset_hash": "ff", "cwe": "CWE-22",
            "operator": "add", "alpha": 8.0, "unit": "sigma", "scope": "answer", "created": "2026-11-29T10:00:00+00:00",
            "extra": {"fold": 2}, "raw_norm": {"3": 2.0}, "sigma": {"3": 0.5}, "mean_norm": None}
    path = tmp_path / "old.gguf"
    w = gguf.GGUFWriter(str(path), "controlvector")
    w.add_string("controlvector.model_hint", "qwen2")
    w.add_uint32("controlvector.layer_count", 1)
    w.add_float32("vulnsteer.alpha", 8.0)
    w.add_string("vulnsteer.metadata", json.dumps(meta))
    w.add_tensor("direction.3", np.array([0.0, 4.0], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    v = SteeringVector.from_gguf(path)
    p = v.provenance
    assert (p.method, p.model_hash, p.template_id, p.record_ids, p.cwe) == ("caa", "1d96", "S1", ("a", "b"), "CWE-22")
    assert p.position is Readout.CODE_LAST and p.created == meta["created"]
    assert p.extra["fold"] == 2 and p.extra["gguf_alpha"] == 8.0 and p.extra["gguf_model_hint"] == "qwen2"
    assert v.application == Application()  # the offsets as stored: add, alpha 1, raw
    (iv,) = v.interventions()
    torch.testing.assert_close(iv.alpha * iv.direction, torch.tensor([0.0, 4.0]))
