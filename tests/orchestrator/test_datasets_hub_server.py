"""The local Hub stand-in (tests/hub_server.py) against the real huggingface_hub client."""

import hashlib
import json
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

WEIGHTS = bytes(range(256)) * 40


@pytest.fixture
def hub(hub_env):
    hub_env.add_repo(
        "org/tiny-model",
        {"config.json": '{"a": 1}', "model.safetensors": WEIGHTS, "tok/tokenizer.model": b"sp"},
    )
    hub_env.add_repo("org/data", {"train.jsonl": '{"x": 1}\n'}, repo_type="dataset")
    hub_env.add_repo("org/gated", {"w.bin": b"12"}, gated=True, token="hf_granted")
    return hub_env


def test_model_snapshot_and_single_file(hub, tmp_path):
    folder = Path(snapshot_download("org/tiny-model", endpoint=hub.url, cache_dir=tmp_path / "c"))
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "tok" / "tokenizer.model").read_bytes() == b"sp"
    assert folder.name == hub.repo("org/tiny-model").sha
    local = hf_hub_download(
        "org/tiny-model", "config.json", endpoint=hub.url, local_dir=tmp_path / "out"
    )
    assert json.loads(Path(local).read_text()) == {"a": 1}
    dataset = snapshot_download(
        "org/data", repo_type="dataset", endpoint=hub.url, cache_dir=tmp_path / "c"
    )
    assert (Path(dataset) / "train.jsonl").read_text() == '{"x": 1}\n'


def test_lfs_headers_and_range_requests(hub):
    url = f"{hub.url}/org/tiny-model/resolve/main/model.safetensors"
    head = urllib.request.urlopen(urllib.request.Request(url, method="HEAD"))
    assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert head.headers["X-Linked-Size"] == str(len(WEIGHTS))
    assert head.headers["X-Repo-Commit"] == hub.repo("org/tiny-model").sha
    part = urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=10-19"}))
    assert part.status == 206 and part.read() == WEIGHTS[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(WEIGHTS)}"
    config = urllib.request.urlopen(
        urllib.request.Request(f"{hub.url}/org/tiny-model/resolve/main/config.json", method="HEAD")
    )
    assert "X-Linked-Etag" not in config.headers and config.headers["ETag"]


def test_repo_info_and_tree(hub):
    api = HfApi(endpoint=hub.url)
    info = api.model_info("org/tiny-model")
    assert info.sha == hub.repo("org/tiny-model").sha
    assert sorted(s.rfilename for s in info.siblings) == [
        "config.json",
        "model.safetensors",
        "tok/tokenizer.model",
    ]
    top = {e.path for e in api.list_repo_tree("org/tiny-model")}
    assert top == {"config.json", "model.safetensors", "tok"}
    assert "tok/tokenizer.model" in {
        e.path for e in api.list_repo_tree("org/tiny-model", recursive=True)
    }
    assert api.dataset_info("org/data").id == "org/data"


def test_errors_match_the_hub(hub, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("org/missing", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(RepositoryNotFoundError):  # a model repo is not a dataset repo
        snapshot_download("org/tiny-model", repo_type="dataset", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "w.bin", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "w.bin", endpoint=hub.url, cache_dir=cache, token="other")
    granted = hf_hub_download(
        "org/gated", "w.bin", endpoint=hub.url, cache_dir=cache, token="hf_granted"
    )
    assert Path(granted).read_bytes() == b"12"
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/tiny-model", "nope.txt", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            "org/tiny-model", "config.json", revision="v2", endpoint=hub.url, cache_dir=cache
        )
    statuses = {
        (r.path.split("/resolve/")[0], r.status) for r in hub.requests if r.method == "HEAD"
    }
    assert ("/org/gated", 401) in statuses and ("/org/gated", 403) in statuses
