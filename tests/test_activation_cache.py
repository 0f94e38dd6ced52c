"""Activation cache under faults: every damaged entry is a miss that gets removed, never a traceback or wrong data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vulnsteer.activations import cache as cache_mod
from vulnsteer.activations.cache import ActivationCache, CachedActivations, prompt_key

KEY = prompt_key("h", "S1", "prompt", [1, 2])


def _value() -> CachedActivations:
    gen = torch.Generator().manual_seed(0)
    return CachedActivations(torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen),
                             torch.randn(3, 4, generator=gen), torch.randn(2), 17)


def _entry(tmp_path: Path) -> tuple[ActivationCache, Path]:
    cache = ActivationCache(tmp_path)
    cache.put(KEY, _value())
    return cache, next(tmp_path.rglob("*.safetensors"))


def _zeros(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)  # what a power loss after the rename leaves


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size - 5])  # cut inside the tensor data


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the last tensor: safetensors itself notices nothing
    path.write_bytes(bytes(data))


def _drop_tensor(path: Path) -> None:
    value = _value()
    save_file({"answer": value.answer_residuals, "n_tokens": torch.tensor([17])}, str(path))  # no "rows"


def _no_checksum(path: Path) -> None:
    value = _value()  # an entry as the old code wrote it: right tensors, no sha256
    save_file({"answer": value.answer_residuals, "rows": value.answer_row_logits, "n_tokens": torch.tensor([17]),
               "span_mean": value.span_mean}, str(path))  # fmt: skip


def _other_key(path: Path) -> None:
    other = ActivationCache(path.parent.parent / "elsewhere")
    other.put(prompt_key("h", "S1", "another prompt", [1, 2]), _value())
    os.replace(next((path.parent.parent / "elsewhere").rglob("*.safetensors")), path)


DAMAGE = {
    "zero-filled": _zeros,
    "truncated": _truncate,
    "flipped-byte": _flip_last_byte,
    "missing-tensor": _drop_tensor,
    "no-checksum": _no_checksum,
    "other-key": _other_key,
    "empty": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_entry_is_a_miss_and_is_removed_then_rewritten(tmp_path, damage):
    cache, path = _entry(tmp_path)
    damage(path)
    assert cache.get(KEY) is None
    assert not path.exists()
    cache.put(KEY, _value())
    got = cache.get(KEY)
    assert got is not None and torch.equal(got.answer_residuals, _value().answer_residuals) and got.n_tokens == 17


def test_round_trip_without_span_mean(tmp_path):
    cache = ActivationCache(tmp_path)
    value = CachedActivations(torch.ones(2, 3, dtype=torch.bfloat16), None, None, torch.zeros(2), 5)
    cache.put(KEY, value)
    got = cache.get(KEY)
    assert got is not None and got.span_mean is None and got.span_last is None
    assert torch.equal(got.answer_residuals, value.answer_residuals)


def test_put_fsyncs_the_file_before_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(cache_mod.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(cache_mod.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    ActivationCache(tmp_path).put(KEY, _value())
    assert events[:2] == ["fsync", "replace"]
    assert [p.name for p in tmp_path.rglob("*")] == [KEY[:2], f"{KEY}.safetensors"]  # no temporary left


def test_failed_write_leaves_no_entry_and_no_temporary(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod.os, "fsync", full_disk)
    ActivationCache(tmp_path).put(KEY, _value())  # the cache only saves time: the run goes on without the entry
    assert list((tmp_path / KEY[:2]).iterdir()) == []


def test_an_entry_that_is_a_folder_is_a_miss_and_does_not_stop_a_put(tmp_path):
    cache = ActivationCache(tmp_path)
    (tmp_path / KEY[:2] / f"{KEY}.safetensors").mkdir(parents=True)
    assert cache.get(KEY) is None
    cache.put(KEY, _value())
    assert cache.get(KEY) is None and (tmp_path / KEY[:2] / f"{KEY}.safetensors").is_dir()


def test_a_read_only_cache_reads_but_never_writes_or_removes(tmp_path):
    cache, path = _entry(tmp_path)
    shared = ActivationCache(tmp_path, read_only=True)
    got = shared.get(KEY)
    assert got is not None and torch.equal(got.answer_residuals, _value().answer_residuals)
    other = prompt_key("h", "S1", "another prompt", [1, 2])
    shared.put(other, _value())
    assert shared.get(other) is None and list(tmp_path.rglob("*.safetensors")) == [path]
    _zeros(path)
    assert shared.get(KEY) is None and path.exists()  # damaged: a miss, left for its owner to repair


def test_a_stored_result_round_trips_with_its_text(tmp_path):
    from vulnsteer.activations.cache import result_key

    cache = ActivationCache(tmp_path)
    key = result_key("answer", KEY, "6")
    cache.keep_result(key, {"n": torch.tensor([6, 1])}, "yes, CWE-787: the copy has no bound")
    found = cache.result(key)
    assert found is not None and found.text == "yes, CWE-787: the copy has no bound"
    assert found.tensors["n"].tolist() == [6, 1]
    assert cache.result(result_key("answer", KEY, "7")) is None


def test_a_result_key_changes_with_every_part_and_every_bit_of_a_tensor():
    from vulnsteer.activations.cache import result_key

    v = torch.randn(8, generator=torch.Generator().manual_seed(1))
    flipped = v.clone()
    flipped.view(torch.int32)[3] ^= 1  # the lowest bit of one float
    keys = {result_key("scores", "a", v), result_key("scores", "a", flipped), result_key("scores", "b", v),
            result_key("kls", "a", v), result_key("scores", "a", v.double())}
    assert len(keys) == 5
    assert result_key("scores", "a", v) == result_key("scores", "a", v.clone())


def test_an_edited_stored_text_is_a_miss_and_is_removed(tmp_path):
    from safetensors import safe_open

    from vulnsteer.activations.cache import result_key

    cache = ActivationCache(tmp_path)
    key = result_key("answer", KEY)
    cache.keep_result(key, {"n": torch.tensor([3, 0])}, "no")
    path = next(tmp_path.rglob("*.safetensors"))
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(path), metadata={**meta, "text": "yes"})  # the checksum still says "no"
    assert cache.result(key) is None and not path.exists()
