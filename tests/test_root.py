"""Data-root lookup: --data, then $VULNSTEER_DATA, then ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from vulnsteer.data import root as root_mod
from vulnsteer.data.root import ENV_VAR, default_candidates, resolve_data_root
from vulnsteer.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def _data(tmp_path: Path, name: str = "data") -> Path:
    folder = tmp_path / name
    (folder / "secllmholmes").mkdir(parents=True)
    return folder


def test_explicit_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(_data(tmp_path, "env")))
    explicit = _data(tmp_path, "flag")
    assert resolve_data_root(explicit) == explicit.resolve()


def test_env_used_without_flag(tmp_path, monkeypatch):
    env = _data(tmp_path, "env")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert resolve_data_root(None) == env.resolve()


def test_explicit_without_secllmholmes_is_an_error(tmp_path):
    with pytest.raises(DataError) as err:
        resolve_data_root(tmp_path / "nowhere")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    assert "git clone https://github.com/ai4cloudops/SecLLMHolmes" in message
    assert "DATA/secllmholmes" in message and "\n" not in message


def test_env_without_secllmholmes_is_an_error_not_a_fallthrough(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match=ENV_VAR):
        resolve_data_root(None)


def test_pointing_at_a_clone_says_which_folder_to_link(tmp_path):
    clone = tmp_path / "SecLLMHolmes"
    (clone / "datasets" / "hand-crafted").mkdir(parents=True)
    with pytest.raises(DataError, match="looks like a SecLLMHolmes clone") as err:
        resolve_data_root(clone)
    assert str(clone / "datasets") in str(err.value)


def test_default_candidates_are_beside_checkout_and_cwd(tmp_path, monkeypatch):
    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    candidates = default_candidates()
    assert candidates[0] == REPO.parent / "shared" / "data"
    assert tmp_path.resolve() / "shared" / "data" in candidates


def test_default_finds_shared_data_beside_checkout_else_beside_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    (tmp_path / "shared" / "data" / "secllmholmes").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    beside_checkout = REPO.parent / "shared" / "data"
    want = beside_checkout if (beside_checkout / "secllmholmes").is_dir() else tmp_path / "shared" / "data"
    assert resolve_data_root(None) == want.resolve()


def test_nothing_found_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    # Point the search at an empty place so the test does not depend on this machine's layout.
    monkeypatch.setattr(root_mod, "default_candidates", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(DataError, match="looked in") as err:
        resolve_data_root(None)
    assert str(tmp_path / "a") in str(err.value) and "--data" in str(err.value)


def test_dangling_secllmholmes_link_is_named(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secllmholmes").symlink_to(tmp_path / "moved-clone" / "datasets")
    with pytest.raises(DataError, match="is a link to .*moved-clone/datasets, which does not exist") as err:
        resolve_data_root(data)
    assert "\n" not in str(err.value)
