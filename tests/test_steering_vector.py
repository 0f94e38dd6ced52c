"""SteeringVector save/load: bit-exact round trip and every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from vulnsteer.errors import DataError, ModelError, VulnsteerError
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.tiny import tiny_model
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector


def make(d: int = 8, seed: int = 0, model_hash: str = "sha256:abc", unit: str = "raw", sigma=None, mean_norm=None,
         **kw) -> SteeringVector:
    gen = torch.Generator().manual_seed(seed)
    dirs = {2: torch.randn(d, generator=gen), 5: torch.randn(d, generator=gen)}
    dirs[2][0] = -0.0  # bit patterns torch.equal would not tell apart
    dirs[2][1] = 1e-40  # subnormal
    mu = {2: torch.randn(d, generator=gen), 5: torch.randn(d, generator=gen)}
    fields = dict(
        method="caa", position="answer", model_id="tiny/qwen2", model_hash=model_hash,
        template_id="secllmholmes-S1", record_ids=["hand-crafted/CWE-22/1", "hand-crafted/CWE-22/p_1"],
        dataset_hash="d41d8", cwe="CWE-22", extra={"alpha_grid": [0.5, 1.0]},
    )
    fields.update(kw)
    return SteeringVector(Directions(dirs, mu=mu, sigma=sigma, mean_norm=mean_norm), Application(unit=unit),
                          Provenance(**fields))


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32)


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    sv = make()
    tensors_path, json_path = sv.save(tmp_path / "vec")
    assert tensors_path.name == "vec.safetensors" and json_path.name == "vec.json"
    back = SteeringVector.load(tmp_path / "vec", expect_model_hash="sha256:abc", expect_d_model=8)
    assert back.layers == [2, 5] and back.d_model == 8
    for layer in sv.layers:
        assert torch.equal(bits(back.directions[layer]), bits(sv.directions[layer]))
        assert torch.equal(bits(back.directions.mu[layer]), bits(sv.directions.mu[layer]))
    assert back.metadata() == sv.metadata()


def test_saving_the_same_vector_twice_writes_the_same_bytes(tmp_path: Path) -> None:
    """A rerun (e.g. a resumed run) must reproduce a vector's files byte for byte, not only its tensors."""
    sv = make()
    files = [sv.save(tmp_path / f"v{i}")[0].read_bytes() for i in range(8)]
    assert all(f == files[0] for f in files)


def test_round_trip_without_mu_and_with_suffixed_stem(tmp_path: Path) -> None:
    sv = SteeringVector({0: torch.ones(4)}, provenance=Provenance(method="pca"))
    sv.save(tmp_path / "v.safetensors")
    back = SteeringVector.load(tmp_path / "v.json")
    assert back.directions.mu is None and back.provenance.method == "pca" and back.directions.raw_norm == {0: 2.0}
    assert torch.equal(back.directions[0], torch.ones(4) / 2)


def test_width_checked_against_a_real_model(tmp_path: Path) -> None:
    d_model = model_parts(tiny_model("qwen2")).d_model
    make(d=d_model).save(tmp_path / "ok")
    assert SteeringVector.load(tmp_path / "ok", expect_d_model=d_model).d_model == d_model
    make(d=d_model // 2).save(tmp_path / "narrow")
    with pytest.raises(ModelError, match=f"{d_model // 2} wide but the model's residual is {d_model}"):
        SteeringVector.load(tmp_path / "narrow", expect_d_model=d_model)


def test_refuses_other_model_hash(tmp_path: Path) -> None:
    make().save(tmp_path / "v")
    with pytest.raises(ModelError, match="built for model hash sha256:abc, not sha256:other"):
        SteeringVector.load(tmp_path / "v", expect_model_hash="sha256:other")


@pytest.mark.parametrize("suffix", [".json", ".safetensors"])
def test_refuses_missing_file(tmp_path: Path, suffix: str) -> None:
    make().save(tmp_path / "v")
    (tmp_path / f"v{suffix}").unlink()
    with pytest.raises(DataError, match=f"v{suffix} not found"):
        SteeringVector.load(tmp_path / "v")


def test_refuses_tensors_from_another_vector(tmp_path: Path) -> None:
    make(seed=0).save(tmp_path / "a")
    make(seed=1).save(tmp_path / "b")
    shutil.copy(tmp_path / "b.safetensors", tmp_path / "a.safetensors")
    with pytest.raises(DataError, match="SHA-256 differs"):
        SteeringVector.load(tmp_path / "a")


def test_refuses_json_that_disagrees_with_tensors(tmp_path: Path) -> None:
    make().save(tmp_path / "v")
    meta = json.loads((tmp_path / "v.json").read_text())
    meta["layers"] = [2, 6]
    (tmp_path / "v.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"lists layers \[2, 6\]"):
        SteeringVector.load(tmp_path / "v")


def test_refuses_malformed_json(tmp_path: Path) -> None:
    make().save(tmp_path / "v")
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        SteeringVector.load(tmp_path / "v")


def test_constructor_refusals() -> None:
    with pytest.raises(VulnsteerError, match="one width"):
        SteeringVector({1: torch.zeros(4), 2: torch.zeros(5)})
    with pytest.raises(VulnsteerError, match="mu layers"):
        SteeringVector(Directions({1: torch.ones(4)}, mu={2: torch.zeros(4)}))
    with pytest.raises(VulnsteerError, match="all zeros"):
        SteeringVector({1: torch.zeros(4)})
    with pytest.raises(VulnsteerError, match="at least one"):
        SteeringVector({})


def test_unserialisable_extra_writes_nothing(tmp_path: Path) -> None:
    sv = make(extra={"tensor": torch.zeros(1)})
    with pytest.raises(VulnsteerError, match="JSON-serialisable"):
        sv.save(tmp_path / "v")
    assert not list(tmp_path.iterdir())


def test_saved_vector_applies_in_two_lines_exactly_as_built(tmp_path: Path) -> None:
    model = tiny_model("qwen2")
    d = model_parts(model).d_model
    gen = torch.Generator().manual_seed(3)
    sv = SteeringVector(Directions({1: torch.randn(d, generator=gen)}, mu={1: torch.randn(d, generator=gen)},
                                   sigma={1: 0.5}, mean_norm={1: 3.0}),
                        Application(unit="sigma", operator="add", alpha=-4.0, scope="all"))
    sv.save(tmp_path / "v")
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        plain = model(ids).logits
        with sv.apply(model):
            expected = model(ids).logits
        with SteeringVector.load(tmp_path / "v").apply(model):  # the two lines a notebook needs
            got = model(ids).logits
        after = model(ids).logits
    assert torch.equal(got, expected) and not torch.equal(got, plain) and torch.equal(after, plain)


def test_arithmetic_acts_on_the_raw_offsets() -> None:
    a = SteeringVector({1: torch.tensor([3.0, 0.0]), 2: torch.tensor([0.0, 1.0])})
    b = SteeringVector({1: torch.tensor([0.0, 4.0])})
    total = a + b
    torch.testing.assert_close(total.interventions(1.0, "add")[0].direction, torch.tensor([3.0, 4.0]))
    assert total.layers == [1, 2] and total.directions.sigma is None
    neg = -a * 2
    torch.testing.assert_close(neg.interventions(1.0, "add")[0].direction, torch.tensor([-6.0, 0.0]))
    torch.testing.assert_close((a + b - b).interventions()[0].direction, torch.tensor([3.0, 0.0]))
    with pytest.raises(VulnsteerError, match="sigma"):
        total.interventions(1.0, "add", unit="sigma")


def test_non_finite_vectors_are_refused() -> None:
    with pytest.raises(VulnsteerError, match="NaN"):
        SteeringVector({1: torch.tensor([float("nan"), 1.0])})
    with pytest.raises(VulnsteerError, match="NaN"):
        SteeringVector(Directions({1: torch.tensor([1.0, 1.0])}, sigma={1: float("inf")}))


def test_scaling_multiplies_every_additive_length() -> None:
    v = make(unit="sigma", sigma={2: 0.5, 5: 2.0}, mean_norm={2: 10.0, 5: 20.0})
    for unit in ("raw", "sigma", "mean_norm"):
        for k in (2.0, 10.0, -3.0):
            got = [iv.direction * iv.alpha for iv in (k * v).interventions(1.5, "add", unit)]
            want = [iv.direction * iv.alpha for iv in v.interventions(1.5 * k, "add", unit)]
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b)
    with pytest.raises(VulnsteerError, match="combine additive"):
        v.with_application("amplify", 2.0) + v


def test_a_saved_vector_with_an_impossible_value_is_refused(tmp_path: Path) -> None:
    make(unit="sigma", sigma={2: 0.5, 5: 2.0}).save(tmp_path / "v")
    for field, value, match in [("sigma", {"2": -5, "5": 2.0}, "sigma must be > 0"), ("alpha", "8", "alpha"),
                                ("raw_norm", {"2": 0.0, "5": 1.0}, "raw_norm must be > 0"),
                                ("position", "middle", "readout"), ("model_hash", 7, "model_hash")]:
        meta = json.loads((tmp_path / "v.json").read_text())
        shutil.copy(tmp_path / "v.safetensors", tmp_path / "w.safetensors")
        meta[field] = value
        (tmp_path / "w.json").write_text(json.dumps(meta))
        with pytest.raises(DataError, match=match) as info:
            SteeringVector.load(tmp_path / "w")
        assert "\n" not in str(info.value)


def test_wrong_types_are_one_line_errors() -> None:
    for directions, match in [({1: [0.5, 0.5]}, "torch.Tensor"), ([torch.ones(2)], "dict"), ({"1": torch.ones(2)}, "ints")]:
        with pytest.raises(VulnsteerError, match=match):
            SteeringVector(directions)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        make() * "2"  # type: ignore[operator]


def test_repr_is_one_short_line() -> None:
    v = SteeringVector({12: torch.randn(896)}, provenance=Provenance(method="caa", model_id="qwen2.5-coder-0.5b@1d9614638d18"))
    text = repr(v)
    assert "\n" not in text and len(text) < 300 and "caa" in text and "[12]" in text and "896" in text


def test_a_file_in_the_format_written_before_the_split_loads(tmp_path: Path) -> None:
    """A vector saved before it was split into maths, application and provenance: the flat JSON as that code
    wrote it (every key by hand here, so a change to the writer cannot hide a change to what is read)."""
    from safetensors.torch import save_file

    from vulnsteer.io import sha256_file
    from vulnsteer.options import Operator, Readout, Scope, StrengthUnit

    u, mu = torch.tensor([0.6, 0.8, 0.0]), torch.tensor([1.0, 2.0, 3.0])
    save_file({"direction.4": u, "mu.4": mu}, str(tmp_path / "old.safetensors"),
              metadata={"format": "vulnsteer-steering-vector/2"})
    meta = {
        "format": "vulnsteer-steering-vector", "version": 2, "method": "caa", "position": "code-mean",
        "model_id": "qwen2.5-coder-0.5b@1d9614638d18", "model_hash": "1d9614638d18abc", "template_id": "S1",
        "record_ids": ["hand-crafted/a", "hand-crafted/b"], "dataset_hash": "ff00", "cwe": "CWE-787",
        "operator": "amplify", "alpha": 4.0, "unit": "sigma", "scope": "span", "created": "2026-11-29T10:00:00+00:00",
        "extra": {"fold": 0, "val_metrics": {"auroc": 0.7}}, "raw_norm": {"4": 5.0}, "sigma": {"4": 0.25},
        "mean_norm": {"4": 12.0}, "layers": [4], "d_model": 3, "has_mu": True, "tensors_file": "old.safetensors",
        "tensors_sha256": sha256_file(tmp_path / "old.safetensors"),
    }
    (tmp_path / "old.json").write_text(json.dumps(meta, indent=2) + "\n")
    v = SteeringVector.load(tmp_path / "old", expect_model_hash="1d9614638d18abc", expect_d_model=3)
    d, a, p = v.directions, v.application, v.provenance
    assert torch.equal(d[4], u) and torch.equal(d.mu[4], mu)
    assert (d.raw_norm, d.sigma, d.mean_norm) == ({4: 5.0}, {4: 0.25}, {4: 12.0})
    assert a == Application(Operator.AMPLIFY, 4.0, StrengthUnit.SIGMA, Scope.SPAN)
    assert p.position is Readout.CODE_MEAN and p.record_ids == ("hand-crafted/a", "hand-crafted/b")
    assert (p.method, p.model_id, p.template_id, p.dataset_hash, p.cwe, p.created) == (
        "caa", "qwen2.5-coder-0.5b@1d9614638d18", "S1", "ff00", "CWE-787", "2026-11-29T10:00:00+00:00")
    assert p.extra == meta["extra"]
    # and written back, the JSON holds the same keys and values (the file hash and its name aside)
    v.save(tmp_path / "new")
    again = json.loads((tmp_path / "new.json").read_text())
    skip = {"tensors_file", "tensors_sha256"}
    assert {k: x for k, x in again.items() if k not in skip} == {k: x for k, x in meta.items() if k not in skip}
    assert list(again) == list(meta), "the keys in the order the old writer wrote them"


def test_parts_are_enums_and_the_constructor_checks_them() -> None:
    from vulnsteer.options import Operator, Readout, Scope, StrengthUnit

    v = make().with_application("amplify", 2, "sigma", "answer")
    assert v.application == Application(Operator.AMPLIFY, 2.0, StrengthUnit.SIGMA, Scope.ANSWER)
    assert v.provenance.position is Readout.ANSWER
    assert type(v.metadata()["operator"]) is str and type(v.metadata()["position"]) is str  # JSON gets the text
    with pytest.raises(VulnsteerError, match="unknown operator"):
        v.with_application("push", 1.0)
    with pytest.raises(VulnsteerError, match="application must be an Application, not dict"):
        SteeringVector({1: torch.ones(2)}, {"alpha": 2.0})  # type: ignore[arg-type]
    with pytest.raises(VulnsteerError, match="provenance must be a Provenance, not str"):
        SteeringVector({1: torch.ones(2)}, Application(), "caa")  # type: ignore[arg-type]
    whole = make()
    one = whole.at_layer(5)
    assert one.layers == [5] and one.provenance is whole.provenance and one.application is whole.application
