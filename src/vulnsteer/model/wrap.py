"""A transformers model the user already loaded, as a `LoadedModel` (what every later stage takes).

Its source hash covers every parameter and buffer (name, dtype, shape, bytes) and the tokenizer's vocabulary:
the activation cache is keyed by it, so two models share cached activations only if they compute the same.
Hashing reads each weight once (about a second per GB).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

import torch
from transformers import PreTrainedModel

from vulnsteer.errors import ModelError
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.precision import DEFAULT_PRECISION, Precision, parse_precision, to_precision


def weights_hash(model: torch.nn.Module, tokenizer: Any) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    h.update(json.dumps(sorted(vocab.items())).encode())
    h.update(str(getattr(tokenizer, "chat_template", "") or "").encode())
    return h.hexdigest()


def wrap(model: Any, tokenizer: Any, name: str | None = None, dtype: Precision | str = DEFAULT_PRECISION) -> LoadedModel:
    """`model` (a transformers *ForCausalLM, on its device) in eval mode, converted in place to `dtype`."""
    if not isinstance(model, PreTrainedModel):
        raise ModelError(f"wrap_model takes a transformers causal LM (AutoModelForCausalLM), not a {type(model).__name__}")
    if not callable(tokenizer) or not hasattr(tokenizer, "decode"):
        raise ModelError(f"wrap_model needs the model's tokenizer (AutoTokenizer), not a {type(tokenizer).__name__}")
    precision = parse_precision(dtype)
    source_hash = weights_hash(model, tokenizer)
    label = str(name or getattr(model.config, "_name_or_path", "") or type(model).__name__).rstrip("/").split("/")[-1]
    net = cast(PreTrainedModel, to_precision(model, precision).eval())
    return LoadedModel(model=net, tokenizer=tokenizer, name=label, source_hash=source_hash, parts=model_parts(net),
                       source_kind="wrapped", label=label, weights_dir=None, dtype=precision,
                       device=str(next(net.parameters()).device))
