"""Shared pytest fixtures."""

import os
from collections.abc import Iterator

import pytest

from tests.hub_server import HubServer
from tests.s3_server import S3Server


@pytest.fixture(scope="session", autouse=True)
def node_cache(tmp_path_factory) -> Iterator[None]:
    """Keep the node-local storage cache (``TUNEFLEET_CACHE``) out of the user's home.

    Set for the whole session before any Ray worker starts, so workers inherit it too.
    """
    previous = os.environ.get("TUNEFLEET_CACHE")
    os.environ["TUNEFLEET_CACHE"] = str(tmp_path_factory.mktemp("tunefleet-cache"))
    yield
    if previous is None:
        os.environ.pop("TUNEFLEET_CACHE", None)
    else:
        os.environ["TUNEFLEET_CACHE"] = previous


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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 endpoint (moto in server mode) on 127.0.0.1, for the whole session."""
    with S3Server() as server:
        yield server


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch) -> S3Server:
    """The emulator, with the AWS environment pointing at it and fresh request counts."""
    for name, value in s3_server.env().items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    s3_server.reset_counts()
    return s3_server
