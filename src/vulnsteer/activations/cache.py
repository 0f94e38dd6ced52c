"""On-disk cache of per-prompt activations and answer logits (safetensors), so a second experiment on the
same prompts does no forward pass.

Key: model source hash, template id, sha256 of the exact rendered prompt, and the positions stored. The
prompt hash covers the record's code, the template text and any truncation, so stale entries cannot match.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FORMAT_VERSION = "1"


@dataclass(frozen=True)
class CachedActivations:
    answer_residuals: torch.Tensor  # [n_layers + 1, d]
    span_mean: torch.Tensor | None  # [n_layers + 1, d]
    answer_row_logits: torch.Tensor  # logits of the yes/no rows at the answer position
    n_tokens: int


def prompt_key(model_hash: str, template_id: str, prompt: str, rows: list[int]) -> str:
    h = hashlib.sha256()
    for part in (FORMAT_VERSION, model_hash, template_id, prompt, json.dumps(rows)):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class ActivationCache:
    root: Path

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> CachedActivations | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            t = load_file(str(path))
        except Exception:  # a torn write from an interrupted run: recompute rather than fail
            return None
        return CachedActivations(
            answer_residuals=t["answer"],
            span_mean=t.get("span_mean"),
            answer_row_logits=t["rows"],
            n_tokens=int(t["n_tokens"].item()),
        )

    def put(self, key: str, value: CachedActivations) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "answer": value.answer_residuals.contiguous(),
            "rows": value.answer_row_logits.contiguous(),
            "n_tokens": torch.tensor([value.n_tokens]),
        }
        if value.span_mean is not None:
            tensors["span_mean"] = value.span_mean.contiguous()
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp))
        tmp.replace(path)  # atomic: readers never see a half-written file
