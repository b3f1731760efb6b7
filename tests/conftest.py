"""Shared pytest fixtures."""

from collections.abc import Iterator

import pytest

from tests.hub_server import HubServer


@pytest.fixture
def hub_server() -> Iterator[HubServer]:
    """A local Hugging Face Hub (see ``tests/hub_server.py``), empty until repos are added."""
    with HubServer() as server:
        yield server


@pytest.fixture
def hub_env(hub_server: HubServer, tmp_path, monkeypatch) -> HubServer:
    """Point the Hugging Face environment at ``hub_server`` with a cache under ``tmp_path``.

    Sets ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_CACHE``, and clears ``HF_TOKEN`` and offline
    mode, so nothing reads or writes the user's real cache or credentials.
    """
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return hub_server
