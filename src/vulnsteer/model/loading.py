"""Load a model by name in eval mode at a precision and on a device, converting GGUF sources once
into a float32 safetensors cache.

Dequantising a GGUF takes about a minute on CPU; the result is saved as a float32 HF directory under
`<cache_dir>/<source_hash[:16]>/hf/` and later loads read that (about 1.5 s for 0.5B). The cache key is
the GGUF's sha256, and a directory is trusted only if its JSON marker (written last) names that hash,
the current cache format and the sha256 of each weights file, and the files still match (see
`integrity` for why that check is cheap); anything else is rebuilt, with a notice. Other precisions
are derived from the float32 copy at load (`precision.to_precision`), never cached.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from vulnsteer.errors import ModelError
from vulnsteer.io import sha256_file
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.integrity import (
    TMP_INFIX,
    cache_problem,
    check_safetensors,
    clean_stale_temporaries,
    install_lock,
    weight_checksums,
)
from vulnsteer.model.parts import ModelParts
from vulnsteer.model.precision import DEFAULT_PRECISION, Device, Precision, parse_precision, resolve_device, to_precision
from vulnsteer.model.sources import (
    DEFAULT_MODEL,
    TINY_PREFIX,
    PartsSpec,
    Source,
    hf_dir_hash,
    join_parts,
    resolve_source,
)
from vulnsteer.progress import status

CACHE_FORMAT = 1  # bump when the cached layout or conversion changes; older cache dirs are rebuilt
MARKER = "vulnsteer-cache.json"
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model"]


@dataclass
class LoadedModel:
    """A causal LM in eval mode with its tokenizer, provenance, architecture accessor, precision and device."""

    model: PreTrainedModel
    tokenizer: Any
    name: str  # as the user passed it
    source_hash: str  # GGUF sha256, or the HF-directory manifest hash (see vulnsteer.model.sources)
    parts: ModelParts
    source_kind: str  # "builtin", "gguf", "hf_dir", "hub" or "tiny"
    label: str  # short machine-independent name: built-in name, hub id, or file/dir basename
    weights_dir: Path | None  # the safetensors directory the weights came from (or were cached to); None for tiny-<arch>
    gguf_path: Path | None = None  # the verified GGUF on disk, for GGUF sources (e.g. for llama.cpp)
    dtype: Precision = Precision.FLOAT32  # what the forwards compute in; stored activations are float32 anyway
    device: str = "cpu"  # where the weights live, e.g. "cpu" or "cuda:0"

    @property
    def model_id(self) -> str:
        """Stable short id for metadata, e.g. 'qwen2.5-coder-0.5b@1d9614638d18'."""
        return f"{self.label}@{self.source_hash[:12]}"


def default_cache_dir() -> Path:
    return Path(os.environ.get("VULNSTEER_CACHE") or Path.home() / ".cache" / "vulnsteer").expanduser()


def load_model(
    name: str = DEFAULT_MODEL,
    cache_dir: Path | None = None,
    trust_remote_code: bool = False,
    device: Device | str | torch.device = Device.AUTO,
    dtype: Precision | str = DEFAULT_PRECISION,
) -> LoadedModel:
    """Load a built-in name, tiny-<arch>, .gguf file, HF directory or hub id (`org/name`) in eval mode.

    `dtype` is a `Precision` (float32, bf16-mixed, bfloat16); `device` auto, cpu, cuda[:n], mps or a torch.device.
    Whether re-entering the block stack is exact is not checked here (that needs the steering stage):
    `vulnsteer.load_model` and every command check it (`steering.reentry_check.checked`).
    """
    precision = parse_precision(dtype)
    target = resolve_device(device)  # before the slow part: a missing GPU fails at once
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    source = resolve_source(name)
    gguf_path: Path | None = None
    weights_dir: Path | None = None
    fresh: PreTrainedModel | None = None
    tokenizer: Any = None
    if source.kind in ("builtin", "gguf"):
        if source.kind == "builtin":
            assert source.spec is not None
            source_hash = source.spec.sha256
        else:
            assert source.path is not None
            source_hash = sha256_file(source.path, memo_dir=cache_dir)
        root = cache_dir / source_hash[:16]
        weights_dir = root / "hf"
        if source.kind == "gguf":
            gguf_path = source.path
        elif source.spec is not None and (root / source.spec.filename).is_file():
            gguf_path = root / source.spec.filename  # verified when joined; re-verified before any conversion
        clean_stale_temporaries(weights_dir)
        problem = _cache_problem(weights_dir, source_hash, cache_dir)
        if problem is not None:
            if weights_dir.exists():  # a first conversion needs no notice; a broken cache does
                print(f"vulnsteer: model cache {weights_dir} is {problem}; rebuilding it from {source.label}", file=sys.stderr)
            if source.spec is not None:
                gguf_path = _builtin_gguf(source.spec, root, cache_dir)
            assert gguf_path is not None
            fresh, tokenizer = _convert_gguf(gguf_path, weights_dir, source, source_hash, cache_dir)
    elif source.kind == "tiny":
        from vulnsteer.model.tiny import TINY_SEED, tiny_hash, tiny_model, tiny_tokenizer

        arch = source.name[len(TINY_PREFIX):]
        fresh, tokenizer = tiny_model(arch, seed=TINY_SEED), tiny_tokenizer()
        source_hash = tiny_hash(arch, TINY_SEED)  # built in memory: no weights directory
    else:
        weights_dir = _hub_snapshot(source.name) if source.kind == "hub" else source.path
        assert weights_dir is not None
        source_hash = hf_dir_hash(weights_dir, memo_dir=cache_dir)

    if fresh is None:
        assert weights_dir is not None
        fresh, tokenizer = _load_hf_dir(weights_dir, trust_remote_code)
    model = cast(PreTrainedModel, to_precision(fresh, precision).to(target).eval())
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        source_hash=source_hash,
        parts=model_parts(model),
        source_kind=source.kind,
        label=source.label,
        weights_dir=weights_dir,
        gguf_path=gguf_path,
        dtype=precision,
        device=str(target),
    )


def _builtin_gguf(spec: PartsSpec, root: Path, cache_dir: Path) -> Path:
    """The joined, verified GGUF of a built-in model in the cache; joined from its parts when absent."""
    path = root / spec.filename
    if path.is_file():
        if sha256_file(path, memo_dir=cache_dir) == spec.sha256:
            return path
        path.unlink()  # corrupted or tampered with: join again from the packages
    return join_parts(spec, path)


def _read_marker(weights_dir: Path) -> dict | None:
    try:
        marker = json.loads((weights_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _cache_problem(weights_dir: Path, source_hash: str, memo_dir: Path) -> str | None:
    """Why `weights_dir` is not a trusted cache of `source_hash` (None when it is)."""
    marker = _read_marker(weights_dir)
    if marker is None:
        return "unmarked (a conversion did not finish)" if weights_dir.exists() else "absent"
    if marker.get("format") != CACHE_FORMAT or marker.get("source_hash") != source_hash:
        return "from another source or cache format"
    if "weights" not in marker:
        # Caches written before checksums were recorded: their marker was still written last, so the
        # conversion had finished. Record the checksums now rather than convert again (a minute).
        try:
            for path in weights_dir.glob("*.safetensors"):
                check_safetensors(path, "rebuilding")
        except ModelError as exc:
            return str(exc).split(": ", 1)[-1].split(";")[0]
        marker["weights"] = weight_checksums(weights_dir, memo_dir)
        tmp = weights_dir / f"{MARKER}{TMP_INFIX}{os.getpid()}"
        tmp.write_text(json.dumps(marker, indent=1) + "\n")
        os.replace(tmp, weights_dir / MARKER)
    return cache_problem(weights_dir, marker, memo_dir)


def _convert_gguf(
    gguf: Path, weights_dir: Path, source: Source, source_hash: str, memo_dir: Path
) -> tuple[PreTrainedModel, Any]:
    """Dequantise `gguf` to float32 and save it as a safetensors HF directory with its marker written last."""
    import transformers

    with status(f"dequantising {gguf.name} to float32 (about a minute per 0.5B on CPU)"):
        try:
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except (ValueError, OSError, KeyError, RuntimeError) as exc:  # transformers' ways of saying "unsupported"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{gguf}: cannot load this GGUF with transformers: {first}") from exc
    # The model is plain float32 now; without this save_pretrained would record a GGUF quantisation.
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it as a module attribute
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    tmp = weights_dir.with_name(f"{weights_dir.name}{TMP_INFIX}{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        marker = {
            "format": CACHE_FORMAT,
            "source_hash": source_hash,
            "source": source.label,
            "gguf_file": gguf.name,
            "transformers": transformers.__version__,
            "weights": weight_checksums(tmp, None),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")  # last: it vouches for the files above
        _install(tmp, weights_dir, source_hash, memo_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # also on Ctrl-C; a SIGKILL's leftovers go on the next load
    return model, tokenizer


def _install(tmp: Path, weights_dir: Path, source_hash: str, memo_dir: Path) -> None:
    """Rename the finished `tmp` into place, unless another process already installed a valid copy.

    Under a lock so that a stale-looking directory is only removed by the process that checked it:
    otherwise a second first load could delete a cache that a first one had just renamed into place.
    """
    with install_lock(weights_dir.parent):
        if _cache_problem(weights_dir, source_hash, memo_dir) is None:
            return  # another process finished the same conversion meanwhile; its copy is as good as ours
        if weights_dir.exists():
            shutil.rmtree(weights_dir)  # checked invalid under the lock: never a valid one
        os.rename(tmp, weights_dir)
    weight_checksums(weights_dir, memo_dir)  # memoise the final paths so the next load only stats them


def _load_hf_dir(directory: Path, trust_remote_code: bool) -> tuple[PreTrainedModel, Any]:
    # transformers reports a cut-off file as a multi-line SafetensorError; name the file instead.
    for path in sorted(directory.glob("*.safetensors")):
        check_safetensors(path, "copy or download the model again")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            directory, dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
        )
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=trust_remote_code)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        if "custom code" in str(exc):
            raise ModelError(
                f"{directory}: this model ships its own Python code; read it, and load with "
                "trust_remote_code=True only if you trust it"
            ) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{directory}: cannot load model or tokenizer: {first}") from exc
    return model, tokenizer


def _hub_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return constants.HF_HUB_OFFLINE or env in ("1", "ON", "YES", "TRUE")


def _hub_snapshot(repo_id: str) -> Path:
    """Download (or find in the HF cache) the safetensors, config and tokenizer files of `repo_id`."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    offline = _hub_offline()
    try:
        path = snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS, etag_timeout=10, local_files_only=offline)
    except GatedRepoError:
        raise ModelError(
            f"hub model {repo_id!r} is gated: accept its licence on the hub and log in (hf auth login)"
        ) from None
    except RepositoryNotFoundError:
        raise ModelError(f"hub model {repo_id!r} not found (or private); check the id") from None
    except Exception as exc:  # noqa: BLE001 - network stacks raise many types; all mean "not reachable"
        why = "HF_HUB_OFFLINE is set and it is not in the local HF cache" if offline else type(exc).__name__
        raise ModelError(
            f"could not reach the Hugging Face hub for {repo_id!r} ({why}); "
            "pass a local HF model directory or a .gguf file instead"
        ) from None
    return Path(path)
