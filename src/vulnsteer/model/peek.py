"""A model's depth and context length without loading its weights: what option checks need at start-up.

Built-in models are known; an HF directory's config.json and a GGUF file's header say it in a few
milliseconds; a hub id is not looked up (its options are checked once the model has loaded), only whether the
hub can be reached when the id is not cached. The device asked for is checked against the installed torch's
build without importing it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from vulnsteer.errors import ModelError
from vulnsteer.model.sources import TINY_CONTEXT, TINY_LAYERS, resolve_source

# Built-in models' blocks and context (from their GGUF headers); the sha256 pins them in sources.py.
_BUILTIN_SHAPES = {"qwen2.5-coder-0.5b": (24, 32768), "qwen2.5-coder-1.5b": (28, 32768), "gemma-3-270m": (18, 32768)}
_DEPTH_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "seq_length")


@dataclass(frozen=True)
class ModelShape:
    n_layers: int
    context: int | None


def peek_shape(name: str) -> ModelShape | None:
    """The model's block count and context, or None where that needs the weights (or a download)."""
    source = resolve_source(name)
    if source.kind == "tiny":
        return ModelShape(TINY_LAYERS, TINY_CONTEXT)
    if source.kind == "builtin":
        known = _BUILTIN_SHAPES.get(source.name)
        return ModelShape(*known) if known else None
    if source.kind == "hf_dir" and source.path is not None:
        return _from_config(source.path / "config.json")
    if source.kind == "gguf" and source.path is not None:
        return _from_gguf(source.path)
    return None


def _from_config(path: Path) -> ModelShape | None:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # the loader reports a broken config with its own one-line error
    cfg = cfg.get("text_config", cfg) if isinstance(cfg, dict) else {}
    depth = next((cfg[k] for k in _DEPTH_KEYS if isinstance(cfg.get(k), int)), None)
    context = next((cfg[k] for k in _CONTEXT_KEYS if isinstance(cfg.get(k), int)), None)
    return ModelShape(depth, context) if depth else None


def _from_gguf(path: Path) -> ModelShape | None:
    try:
        import gguf

        reader = gguf.GGUFReader(str(path))
        arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
        depth = int(reader.fields[f"{arch}.block_count"].parts[-1][0])
        ctx_field = reader.fields.get(f"{arch}.context_length")
        context = int(ctx_field.parts[-1][0]) if ctx_field is not None else None
    except Exception:  # noqa: BLE001 - a malformed header is the loader's to report, in one line
        return None
    return ModelShape(depth, context)


def check_device_here(device: str) -> None:
    """Refuse, in milliseconds and without importing torch, a device this machine cannot have: cuda with a
    torch built without CUDA (or ROCm), mps off Apple silicon. What passes is checked again when the model
    loads (model/precision.py: a CUDA build with no GPU, a GPU index out of range)."""
    kind = device.partition(":")[0]
    if kind == "cuda" and not _torch_has_gpu_build():
        raise ModelError(f"--device {device} asked for but this torch has no usable CUDA (a CPU build); "
                         "install a CUDA build of torch or use --device cpu")
    if kind == "mps" and not (sys.platform == "darwin" and platform.machine() == "arm64"):
        raise ModelError(f"--device {device} asked for but MPS is not available here; use --device cpu "
                         "(MPS needs Apple silicon)")


def _torch_has_gpu_build() -> bool:
    """torch/version.py says what torch was built for (cuda = None and hip = None: a CPU build); read as text."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return True  # no torch to read: the loader's own check reports it
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return True
    built = re.findall(r"^(cuda|hip)\s*(?::[^=]*)?=\s*(.+)$", text, flags=re.MULTILINE)
    return not built or any(value.strip() != "None" for _, value in built)


def check_hub_reachable(name: str, timeout_s: float = 3.0) -> None:
    """A hub id not in the local HF cache needs the hub: refuse within `timeout_s` when it cannot be reached
    (offline, or no route), instead of after the download's own retries."""
    source = resolve_source(name)
    if source.kind != "hub":
        return
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(source.name, "config.json"), str):
        return  # in the cache: the loader uses it when the hub is unreachable
    why = None
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"):
        why = "HF_HUB_OFFLINE is set and it is not in the local HF cache"
    else:
        host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
        try:
            socket.create_connection((host, 443), timeout=timeout_s).close()
        except OSError as exc:
            why = f"{host} not reachable: {type(exc).__name__}"
    if why is not None:
        raise ModelError(f"could not reach the Hugging Face hub for {source.name!r} ({why}); "
                         "pass a local HF model directory or a .gguf file instead")
