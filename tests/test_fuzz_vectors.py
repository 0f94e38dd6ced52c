"""SteeringVector.load fed mutated files: it loads or refuses in one line (DataError), never a traceback."""

from __future__ import annotations

from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vulnsteer.errors import VulnsteerError
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector


def _saved(folder: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    sv = SteeringVector(Directions({3: torch.randn(8, generator=g)}, mu={3: torch.randn(8, generator=g)}, sigma={3: 0.5},
                                   mean_norm={3: 2.0}),
                        Application(unit="sigma"), Provenance(method="caa", record_ids=["a", "b"]))
    sv.save(folder / "v")
    return folder / "v"


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from([".json", ".safetensors"]), pos=st.integers(0, 10**6), junk=st.binary(min_size=1, max_size=8),
       cut=st.booleans())
def test_mutated_vector_files_load_or_give_one_line(tmp_path_factory, which, pos, junk, cut):
    stem = _saved(tmp_path_factory.mktemp("v"))
    path = Path(f"{stem}{which}")
    data = path.read_bytes()
    i = pos % len(data)
    path.write_bytes(data[:i] if cut else data[:i] + junk + data[i + len(junk):])
    try:
        sv = SteeringVector.load(stem)
    except VulnsteerError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert all(torch.isfinite(v).all() for v in sv.directions.values())
