"""Shared fixtures: the data root and tiny random models (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vulnsteer.model.tiny import TINY_ARCHITECTURES, tiny_model, tiny_tokenizer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("VULNSTEER_DATA", SHARED_DATA))
    if not (root / "secllmholmes").is_dir():
        pytest.skip(f"SecLLMHolmes not found under {root}")
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
