"""llama.cpp control-vector GGUF: export a `SteeringVector`, import one (ours, repeng's or llama.cpp's).

Format (repeng `export_gguf`, llama.cpp `common_control_vector_load_one`): `general.architecture =
"controlvector"`, `controlvector.model_hint` (the model's architecture name; llama.cpp does not check
it), `controlvector.layer_count` (number of direction tensors), and one 1-D F32 tensor
`direction.<il>` per layer.

Layer mapping. llama.cpp adds `direction.<il>` to the residual at the end of the graph-building loop
iteration `il` (`cur = build_cvec(cur, il)`, tensor "l_out-<il>"), where `il` runs 0..n_layer-1 over
the decoder blocks: it steers the *output of 0-based block il*, i.e. HF `hidden_states[il + 1]`. This is
exactly vulnsteer's layer index, so vulnsteer layer L is written as `direction.L` with no shift (repeng
uses the same mapping). llama.cpp rejects `direction.0` ("invalid (zero) direction tensor layer
index"), so the output of block 0 cannot be steered there and export refuses a vector that has it.
(llama.cpp's own cvector-generator measures at l_out-il but writes `direction.<il+1>`, one block later
than where it measured; do not copy that shift.) llama.cpp adds the vector at every token position,
prompt and generated alike (vulnsteer's scope "all"), scaled by `--control-vector-scaled FILE:SCALE`, over the
blocks `--control-vector-layer-range START END` names (inclusive, the same 0-based block numbers; default 1 to
the last). Export therefore refuses a vector set to steer another scope (an experiment that chose its
strength at the answer position says nothing about that strength at every token), and writes the scope it
assumes as `vulnsteer.scope`. tests/test_llama_cpp.py checks the mapping and the steered answer score in
llama.cpp itself (llama-cpp-python).

What the format cannot carry: `mu` (llama.cpp can only add), and vulnsteer's provenance. We keep the
provenance in three extra keys llama.cpp ignores (`vulnsteer.metadata`, a JSON string, `vulnsteer.alpha` and
`vulnsteer.scope`); importing a file without them gives `SteeringVector` defaults ("" for unknown
strings, cwe "", no mu) with `model_id` taken from the model hint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch
from torch import Tensor

from vulnsteer.errors import DataError, VulnsteerError
from vulnsteer.options import Scope
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.provenance import Provenance

ARCH = "controlvector"
_DIRECTION = re.compile(r"^direction\.(\d+)$")
# What an import keeps of the exporting vector's provenance (vulnsteer.metadata, the vector's flat JSON).
_KEPT = ("method", "position", "model_id", "model_hash", "template_id", "record_ids", "dataset_hash", "cwe", "created")


def export_control_vector(
    offsets: dict[int, Tensor], meta: dict[str, Any], path: Path, model_hint: str, alpha: float = 1.0
) -> Path:
    """Write `offsets` (per layer, the additive offset of strength 1 in the vector's unit: scale(unit) x u)
    times `alpha` as a llama.cpp control vector (vulnsteer layer L -> `direction.L`), so `--control-vector FILE`
    adds what `sv.apply(model, alpha, "add")` adds. `meta`: the vector's JSON description (vector_files.metadata).

    `model_hint` should be the model's GGUF `general.architecture` (e.g. "qwen2", "llama").
    """
    path = Path(path)
    if 0 in offsets:
        raise VulnsteerError(
            "llama.cpp cannot steer the output of block 0 (it rejects direction.0); "
            "drop layer 0 from the vector before exporting"
        )
    if not np.isfinite(alpha):
        raise VulnsteerError(f"alpha must be finite, got {alpha}")
    scaled = {layer: offset * float(alpha) for layer, offset in sorted(offsets.items())}
    for layer, data in scaled.items():
        # llama.cpp would add NaN/inf to every residual and generate garbage without complaint.
        if not bool(torch.isfinite(data.to(torch.float32)).all()):
            raise VulnsteerError(
                f"layer {layer} of the steering vector holds NaN or inf (after alpha={alpha}); "
                "refit the vector or drop that layer before exporting"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), ARCH)
    writer.add_string(f"{ARCH}.model_hint", model_hint)
    writer.add_uint32(f"{ARCH}.layer_count", len(scaled))
    writer.add_float32("vulnsteer.alpha", float(alpha))
    # What llama.cpp does with it: adds it at every token (SteeringVector.to_gguf refuses any other scope).
    writer.add_string("vulnsteer.scope", Scope.ALL.value)
    writer.add_string("vulnsteer.metadata", json.dumps(meta, allow_nan=False))
    for layer, data in scaled.items():
        writer.add_tensor(f"direction.{layer}", data.to(torch.float32).numpy().astype("<f4", copy=False))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def import_control_vector(path: Path) -> tuple[Directions, Provenance]:
    """Read a control-vector GGUF: `direction.L` -> vulnsteer layer L, tensors as stored (alpha included), and
    what is known of where it came from."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"control vector file {path} not found")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError, struct.error, IndexError... on bad files
        raise DataError(
            f"{path} is not a readable GGUF file ({_one_line(exc)}); it may be cut short or damaged, "
            "export or download it again"
        ) from exc
    arch = _field(reader, "general.architecture")
    if arch != ARCH:
        raise DataError(f"{path} has architecture {arch!r}, not {ARCH!r}: it is not a control vector")
    directions: dict[int, torch.Tensor] = {}
    for t in reader.tensors:
        m = _DIRECTION.match(t.name)
        if m is None:
            raise DataError(f"{path}: unexpected tensor {t.name!r}; a control vector holds only direction.<layer>")
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise DataError(f"{path}: tensor {t.name} is {t.tensor_type.name}, llama.cpp needs F32")
        if len(t.shape) != 1:
            raise DataError(f"{path}: tensor {t.name} has shape {list(t.shape)}, expected 1-D")
        data = np.array(t.data, dtype=np.float32, copy=True)
        if not np.isfinite(data).all():
            raise DataError(f"{path}: tensor {t.name} holds NaN or inf; it cannot steer, re-export the vector")
        directions[int(m.group(1))] = torch.from_numpy(data)
    if not directions:
        raise DataError(f"{path} holds no direction.<layer> tensors")
    if len({v.shape for v in directions.values()}) != 1:
        raise DataError(f"{path}: direction tensors differ in width")
    hint = _field(reader, f"{ARCH}.model_hint")
    alpha = _field(reader, "vulnsteer.alpha")
    raw_meta = _field(reader, "vulnsteer.metadata")
    del reader
    extra = {"source": "gguf", "gguf_path": str(path), "gguf_model_hint": hint}
    if raw_meta is None:
        return Directions(directions), Provenance(model_id=str(hint or ""), cwe="", extra=extra)
    try:
        meta = json.loads(str(raw_meta))
        if not isinstance(meta, dict):
            raise TypeError("not a JSON object")
        # The tensors are the additive offsets as written (alpha and unit folded in): keep the provenance,
        # but apply them as stored (unit raw, alpha 1), not with the exporting run's statistics.
        provenance = Provenance(**{k: meta[k] for k in _KEPT if k in meta},
                                extra={**meta.get("extra", {}), **extra, "gguf_alpha": alpha})
        return Directions(directions), provenance
    except (ValueError, TypeError, AttributeError, RecursionError, VulnsteerError) as exc:
        raise DataError(f"{path}: vulnsteer.metadata is malformed ({_one_line(exc)}); re-export the vector") from exc


def _one_line(exc: BaseException, width: int = 160) -> str:
    """An exception's text on one short line, for wrapping a library's error in ours."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def _field(reader: gguf.GGUFReader, key: str) -> str | float | int | None:
    """A scalar or string KV value, or None when absent."""
    f = reader.get_field(key)
    if f is None or not f.data:
        return None
    part = f.parts[f.data[0]]
    if f.types and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(part).decode("utf-8", errors="replace")
    return part[0].item()
