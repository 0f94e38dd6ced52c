"""On-disk cache of per-prompt activations and answer logits (safetensors), so a second experiment on the
same prompts does no forward pass; and of what later stages compute from a prompt (steered scores, generated
answers, fluency NLLs: `StoredResult`, keyed by `result_key`), so a rerun does not compute them again either.

Key: model source hash, template id, sha256 of the exact rendered prompt, and the positions stored. The
prompt hash covers the code as shown (each window of a long file is its own prompt, its own entry) and the
template text, so stale entries cannot match.

Durability: an entry is written to a temporary file, fsynced, renamed into place, and its folder fsynced,
so a crash leaves either the old state or the whole entry. A power loss can still leave a file of the right
name full of zeros (the rename reached the disk, the data did not); every entry therefore carries a sha256
of its tensors in the safetensors metadata, and an entry that does not verify (zeros, truncated, a flipped
byte, a tensor missing, no checksum) is a miss: it is removed and recomputed, never returned.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from vulnsteer.progress import log

# In the key: entries of an older format are misses (version 2 added span_last), recomputed, never misread.
FORMAT_VERSION = "2"
REQUIRED = ("answer", "rows", "n_tokens")


@dataclass(frozen=True)
class CachedActivations:
    answer_residuals: torch.Tensor  # [n_layers + 1, d]
    span_mean: torch.Tensor | None  # [n_layers + 1, d] mean over the code's tokens
    span_last: torch.Tensor | None  # [n_layers + 1, d] at the code's last token
    answer_row_logits: torch.Tensor  # logits of the yes/no rows at the answer position
    n_tokens: int


def prompt_key(model_hash: str, template_id: str, prompt: str, rows: list[int]) -> str:
    h = hashlib.sha256()
    for part in (FORMAT_VERSION, model_hash, template_id, prompt, json.dumps(rows)):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def result_key(kind: str, *parts: str | torch.Tensor) -> str:
    """Key of a stored result: its kind (e.g. "scores") and everything it was computed from, text or tensors
    (a tensor by its dtype, shape and bytes, so a vector that differs in one bit is another entry)."""
    h = hashlib.sha256()
    for part in (FORMAT_VERSION, "result", kind, *parts):
        if isinstance(part, torch.Tensor):
            t = part.detach().contiguous().cpu()
            h.update(f"{t.dtype}{list(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(str(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class StoredResult:
    tensors: dict[str, torch.Tensor]
    text: str = ""  # e.g. a generated answer; covered by the entry's checksum like the tensors


def _digest(tensors: dict[str, torch.Tensor], text: str = "") -> str:
    """sha256 over each tensor's name, dtype, shape and bytes, in name order, then `text` (if any)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if text:
        h.update(b"\0text\0" + text.encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True)
class ActivationCache:
    """`read_only`: another run's cache, read and never changed (a miss is not stored, a damaged entry not
    removed), so a benchmark can reuse a study's passes while the study still writes there."""

    root: Path
    read_only: bool = False

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> CachedActivations | None:
        """The entry for `key`, or None if absent or damaged (a damaged entry is removed)."""
        path = self._path(key)
        if not path.is_file():
            return None
        found = self._read(key, REQUIRED)
        if found is None:
            return None
        t = found.tensors
        if t["n_tokens"].numel() != 1:
            return None
        return CachedActivations(
            answer_residuals=t["answer"],
            span_mean=t.get("span_mean"),
            span_last=t.get("span_last"),
            answer_row_logits=t["rows"],
            n_tokens=int(t["n_tokens"].item()),
        )

    def result(self, key: str) -> StoredResult | None:
        """The stored result for `key` (from `result_key`), or None if absent or damaged."""
        return self._read(key, ())

    def keep_result(self, key: str, tensors: dict[str, torch.Tensor], text: str = "") -> None:
        """Store a result under `key`, as `put` stores activations."""
        self._write(key, {name: t.detach().contiguous().cpu() for name, t in tensors.items()}, text)

    def _read(self, key: str, required: tuple[str, ...]) -> StoredResult | None:
        path = self._path(key)
        if not path.is_file():
            return None
        found = _read_verified(path, key, required)
        if found is None and not self.read_only:
            path.unlink(missing_ok=True)  # so the next put rewrites it and later runs do not re-check it
        return found

    def put(self, key: str, value: CachedActivations) -> None:
        """Store the entry; where it cannot be written (a folder in its place, a full disk) the run goes on
        without it: the cache only saves time. A read-only cache stores nothing."""
        tensors = {
            "answer": value.answer_residuals.detach().contiguous().cpu(),
            "rows": value.answer_row_logits.detach().contiguous().cpu(),
            "n_tokens": torch.tensor([value.n_tokens]),
        }
        for name, tensor in (("span_mean", value.span_mean), ("span_last", value.span_last)):
            if tensor is not None:
                tensors[name] = tensor.detach().contiguous().cpu()
        self._write(key, tensors)

    def _write(self, key: str, tensors: dict[str, torch.Tensor], text: str = "") -> None:
        if self.read_only:
            return
        try:
            self._write_entry(key, tensors, text)
        except OSError as exc:
            log(f"activation cache: could not store an entry under {self.root} ({exc.strerror}); continuing without")

    def _write_entry(self, key: str, tensors: dict[str, torch.Tensor], text: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"sha256": _digest(tensors, text), "key": key, **({"text": text} if text else {})}
        data = save(tensors, metadata=meta)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())  # data on disk before the rename makes it visible
            os.replace(tmp, path)  # atomic: readers never see a half-written file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)


def _read_verified(path: Path, key: str, required: tuple[str, ...]) -> StoredResult | None:
    """The entry written for `key` whose checksum matches and which holds every `required` tensor, else None.
    The key check catches a file copied or renamed to another entry's name."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception:  # zeros, truncation, bad header: safetensors raises its own error types
        return None
    if meta.get("key") != key or any(name not in tensors for name in required):
        return None
    text = meta.get("text", "")
    if meta.get("sha256") != _digest(tensors, text):
        return None
    return StoredResult(tensors, text)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; some filesystems cannot open a folder for fsync, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
