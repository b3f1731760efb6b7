"""``tune download`` against the local Hub stand-in (tests/hub_server.py)."""

import socket
import time
from pathlib import Path

import pytest
from huggingface_hub.utils import logging as hf_logging
from typer.testing import CliRunner

from orchestrator.cli import app
from tests import hub_server as hub_module

TOKEN = "hf_SeCrEtToKeN0123456789"
MODEL_FILES = {
    "config.json": '{"model_type": "llama"}',
    "model.safetensors": b"\x00safetensors-bytes" * 64,
    "tokenizer.model": b"tiktoken-ranks",
    "original/consolidated.00.pth": b"meta-weights" * 32,
    "original/params.json": '{"dim": 8}',
    "original/tokenizer.model": b"tiktoken-ranks",
}

runner = CliRunner()
# Bind huggingface_hub's log handler to the real stderr now: bound inside the first
# CliRunner.invoke, it would write to that call's closed stream in later calls.
hf_logging.get_logger()


def tune(*args: str):
    return runner.invoke(app, ["download", *args])


def repo_files(root: Path) -> set[str]:
    """Files under ``root``, relative, without huggingface_hub's ``.cache`` bookkeeping."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(root).parts
    }


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def hub(hub_env):
    hub_env.add_repo("org/model", MODEL_FILES)
    return hub_env


def test_download_model_default_skips_meta_weights(hub, tmp_path):
    out = tmp_path / "model"
    result = tune("org/model", "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert repo_files(out) == set(MODEL_FILES) - {"original/consolidated.00.pth"}
    assert (out / "model.safetensors").read_bytes() == MODEL_FILES["model.safetensors"]
    assert (out / "original" / "tokenizer.model").read_bytes() == b"tiktoken-ranks"
    assert "original/params.json" in result.output and str(out) in result.output
    assert "consolidated" not in result.output
    assert not list(tmp_path.glob(".model*"))  # no staging dir left behind


def test_empty_ignore_pattern_downloads_everything(hub, tmp_path):
    out = tmp_path / "model"
    assert tune("org/model", "--output-dir", str(out), "--ignore-patterns", "").exit_code == 0
    assert repo_files(out) == set(MODEL_FILES)


def test_custom_ignore_patterns_repeatable(hub, tmp_path):
    out = tmp_path / "model"
    result = tune(
        "org/model", "--output-dir", str(out),
        "--ignore-patterns", "*.safetensors", "--ignore-patterns", "original/*",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert repo_files(out) == {"config.json", "tokenizer.model"}


def test_into_existing_empty_dir_and_update_in_place(hub, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    assert tune("org/model", "--output-dir", str(out)).exit_code == 0
    hub.repo("org/model").files["config.json"] = b'{"model_type": "llama", "v": 2}'
    result = tune("org/model", "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "config.json").read_bytes() == b'{"model_type": "llama", "v": 2}'


def test_revision(hub, tmp_path):
    repo = hub.repo("org/model")
    sha = repo.sha
    out = tmp_path / "by_sha"
    result = tune("org/model", "--output-dir", str(out), "--revision", sha)
    assert result.exit_code == 0, result.output
    assert sha[:12] in result.output
    assert any(f"/resolve/{sha}/config.json" in r.path for r in hub.requests)

    result = tune("org/model", "--output-dir", str(tmp_path / "x"), "--revision", "v9")
    assert result.exit_code == 1
    assert "no revision 'v9'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("via", ["flag", "env"])
@pytest.mark.parametrize("kind", ["gated", "private"])
def test_token_never_leaks(hub, tmp_path, monkeypatch, via, kind):
    hub.add_repo("org/locked", MODEL_FILES, token=TOKEN, **{kind: True})
    out = tmp_path / "locked"
    args = ["org/locked", "--output-dir", str(out)]
    if via == "flag":
        args += ["--hf-token", TOKEN]
    else:
        monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = tune(*args)
    assert result.exit_code == 0, result.output
    assert "config.json" in repo_files(out)
    assert any(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in hub.requests)
    assert TOKEN not in result.output
    for root in (out, tmp_path / "hf_home", tmp_path):
        assert files_containing(root, TOKEN.encode()) == []


def test_gated_without_or_with_wrong_token(hub, tmp_path):
    hub.add_repo("org/gated", MODEL_FILES, token=TOKEN, gated=True)
    out = tmp_path / "gated"
    result = tune("org/gated", "--output-dir", str(out))
    assert result.exit_code == 1
    assert "gated" in result.output and "licence" in result.output
    assert "--hf-token" in result.output and "HF_TOKEN" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".gated*"))  # no empty leftovers

    result = tune("org/gated", "--output-dir", str(out), "--hf-token", "hf_wrong")
    assert result.exit_code == 1
    assert "gated" in result.output and "no access" in result.output
    assert "hf_wrong" not in result.output
    assert not out.exists()


def test_missing_repo(hub, tmp_path):
    result = tune("org/nope", "--output-dir", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "'org/nope' not found" in result.output and "private" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "nope").exists()


def test_unreachable_endpoint_fails_fast(hub_env, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    start = time.monotonic()
    result = tune("org/model", "--output-dir", str(tmp_path / "m"))
    assert time.monotonic() - start < 10
    assert result.exit_code == 1
    assert "Cannot reach" in result.output and endpoint in result.output
    assert "Traceback" not in result.output


def test_output_dir_is_a_file(hub, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = tune("org/model", "--output-dir", str(target))
    assert result.exit_code == 1 and "not a directory" in result.output


def test_failure_mid_download_leaves_no_output_and_resumes(hub, tmp_path, monkeypatch):
    """The server fails the safetensors body (after its metadata) while other files land."""
    broken = {"on": True}
    original = hub_module._HubHandler._resolve

    def flaky(self, path, *, head):
        if broken["on"] and path.endswith("/model.safetensors") and not head:
            raise hub_module._HubError(500, None, "internal error")
        return original(self, path, head=head)

    monkeypatch.setattr(hub_module._HubHandler, "_resolve", flaky)
    out = tmp_path / "model"
    result = tune("org/model", "--output-dir", str(out))
    assert result.exit_code == 1
    assert "was not created; rerunning resumes" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    partial = list(tmp_path.glob(".model.*.partial"))
    assert len(partial) == 1 and "config.json" in repo_files(partial[0])

    broken["on"] = False
    result = tune("org/model", "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").read_bytes() == MODEL_FILES["model.safetensors"]
    assert not partial[0].exists()
