"""The model cache notices broken weights and rebuilds; broken user weights and NaN logits fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vulnsteer.io
from test_loading import logits, reference_logits, write_tiny_gguf
from vulnsteer.activations.passes import run_prompt
from vulnsteer.errors import ModelError
from vulnsteer.io import sha256_file
from vulnsteer.model import loading
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import MARKER, load_model
from vulnsteer.model.tiny import save_tiny, tiny_model


@pytest.fixture
def cached(tmp_path) -> tuple[Path, Path, Path]:
    """(gguf, cache dir, weights dir) after a first, converting load."""
    (tmp_path / "src").mkdir()
    gguf = write_tiny_gguf(tmp_path / "src" / "tiny-qwen2.gguf")
    cache = tmp_path / "cache"
    return gguf, cache, load_model(str(gguf), cache_dir=cache, dtype="float32").weights_dir


def _weights(weights_dir: Path) -> Path:
    return next(weights_dir.glob("*.safetensors"))


def test_marker_records_weight_checksums(cached):
    _, _, weights_dir = cached
    marker = json.loads((weights_dir / MARKER).read_text())
    w = _weights(weights_dir)
    assert marker["weights"] == {w.name: sha256_file(w)}


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte", "missing-file", "extra-file"])
def test_damaged_cache_is_rebuilt_with_a_notice(damage, cached, capfd):
    gguf, cache, weights_dir = cached
    w = _weights(weights_dir)
    data = w.read_bytes()
    if damage == "truncated":
        w.write_bytes(data[: len(data) // 2])
    elif damage == "flipped-byte":  # same size: only the checksum can tell
        w.write_bytes(data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])
    elif damage == "missing-file":
        w.unlink()
    else:
        (weights_dir / "model-00002-of-00002.safetensors").write_bytes(data)
    capfd.readouterr()
    loaded = load_model(str(gguf), cache_dir=cache, dtype="float32")
    notice = [line for line in capfd.readouterr().err.splitlines() if "rebuilding" in line]
    assert len(notice) == 1 and str(weights_dir) in notice[0]
    assert torch.equal(logits(loaded), reference_logits(loaded, "qwen2"))
    assert sorted(p.name for p in weights_dir.glob("*.safetensors")) == [w.name]


def test_warm_load_only_stats_the_weights(cached, monkeypatch, capfd):
    gguf, cache, weights_dir = cached

    def no_reading(*_a, **_k):
        raise AssertionError("a warm load must not re-hash unchanged weights")

    monkeypatch.setattr(vulnsteer.io, "read_chunks", no_reading)
    capfd.readouterr()
    load_model(str(gguf), cache_dir=cache, dtype="float32")
    assert "rebuilding" not in capfd.readouterr().err


def test_cache_without_checksums_is_upgraded_not_rebuilt(cached, capfd):
    gguf, cache, weights_dir = cached
    marker = json.loads((weights_dir / MARKER).read_text())
    (weights_dir / MARKER).write_text(json.dumps({k: v for k, v in marker.items() if k != "weights"}))
    written = _weights(weights_dir).stat().st_mtime_ns
    capfd.readouterr()
    load_model(str(gguf), cache_dir=cache, dtype="float32")
    assert _weights(weights_dir).stat().st_mtime_ns == written
    assert json.loads((weights_dir / MARKER).read_text())["weights"] == marker["weights"]
    assert "rebuilding" not in capfd.readouterr().err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_interrupted_conversion_leaves_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    gguf = write_tiny_gguf(tmp_path / "src" / "tiny-qwen2.gguf")
    cache = tmp_path / "cache"

    def interrupted(self, directory, **_kw):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(loading.PreTrainedModel, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_model(str(gguf), cache_dir=cache)
    assert [p.name for p in next(cache.glob("*/")).iterdir() if p.is_dir()] == []


def test_stale_temporaries_of_dead_processes_are_cleaned(cached):
    gguf, cache, weights_dir = cached
    dead = weights_dir.with_name(f"hf.tmp-{_dead_pid()}")
    live = weights_dir.with_name(f"hf.tmp-{os.getppid()}")  # a running process's conversion
    for d in (dead, live):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"half")
    load_model(str(gguf), cache_dir=cache, dtype="float32")
    assert not dead.exists() and live.exists()


def test_install_never_replaces_a_valid_cache(cached):
    _, cache, weights_dir = cached
    before = {p.name: p.stat().st_mtime_ns for p in weights_dir.iterdir()}
    sha = json.loads((weights_dir / MARKER).read_text())["source_hash"]
    late = weights_dir.with_name("hf.tmp-late")  # a second first load finishing after the first
    late.mkdir()
    (late / "model.safetensors").write_bytes(b"other")
    loading._install(late, weights_dir, sha, cache)
    assert {p.name: p.stat().st_mtime_ns for p in weights_dir.iterdir()} == before
    assert late.exists()  # left to its owner, whose finally-clause removes it


def test_install_replaces_an_invalid_cache(cached):
    _, cache, weights_dir = cached
    sha = json.loads((weights_dir / MARKER).read_text())["source_hash"]
    new = weights_dir.with_name("hf.tmp-new")
    os.rename(weights_dir, new)
    weights_dir.mkdir()
    (weights_dir / "junk.txt").write_text("unmarked")
    loading._install(new, weights_dir, sha, cache)
    assert not new.exists() and not (weights_dir / "junk.txt").exists() and (weights_dir / MARKER).is_file()


@pytest.mark.parametrize("damage", ["truncated", "bad-header", "empty"])
def test_broken_user_weights_fail_in_one_line_naming_the_file(damage, tmp_path):
    model_dir = save_tiny("qwen2", tmp_path / "tiny")
    w = _weights(model_dir)
    data = w.read_bytes()
    w.write_bytes({"truncated": data[: len(data) - 100], "bad-header": data[:8] + b"{nope" + data[13:], "empty": b""}[damage])
    with pytest.raises(ModelError) as exc:
        load_model(str(model_dir), cache_dir=tmp_path / "cache")
    message = str(exc.value)
    assert str(w) in message and "\n" not in message and "again" in message


def test_non_finite_logits_stop_the_run(tokenizer):
    model = tiny_model("qwen2")
    with torch.no_grad():
        model_parts(model).blocks[1].mlp.down_proj.weight[0, 0] = float("nan")
    ids = tokenizer("int main(void) { return 0; }", return_tensors="pt").input_ids
    with pytest.raises(ModelError, match="non-finite logits") as exc:
        run_prompt(model, model_parts(model), ids)
    assert "\n" not in str(exc.value)
