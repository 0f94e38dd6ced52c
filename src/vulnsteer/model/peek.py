"""A model's depth and context length without loading its weights: what option checks need at start-up.

Built-in models are known; an HF directory's config.json and a GGUF file's header say it in a few
milliseconds; a hub id is not looked up (its options are checked once the model has loaded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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
