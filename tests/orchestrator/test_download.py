"""``tune download`` against the local Hub stand-in (tests/hub_server.py)."""

import socket
import time
from pathlib import Path

import pytest
from huggingface_hub.utils import logging as hf_logging
from typer.testing import CliRunner

from modeling.checkpointing.atomic import COMPLETE_MARKER
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
    """Files under ``root``, relative, without ``.cache`` bookkeeping or our marker."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(root).parts and p.name != COMPLETE_MARKER
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
    assert '"repo_id": "org/model"' in (out / COMPLETE_MARKER).read_text()


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
    assert list(tmp_path.iterdir()) == []  # no output, no partial sibling


def test_output_dir_is_a_file(hub, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = tune("org/model", "--output-dir", str(target))
    assert result.exit_code == 1 and "not a directory" in result.output
    assert str(target) in result.output and "--force" in result.output
    assert "Traceback" not in result.output
    assert target.read_text() == "x" and sorted(tmp_path.iterdir()) == [target]


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


def test_a_folder_of_other_files_is_refused_before_any_transfer(hub, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("my notes")
    result = tune("org/model", "--output-dir", str(mine))
    assert result.exit_code == 1
    assert str(mine) in result.output and "notes.md" in result.output
    assert "--force" in result.output and "Traceback" not in result.output
    assert (mine / "notes.md").read_text() == "my notes" and repo_files(mine) == {"notes.md"}
    assert hub.requests == [] and not list(tmp_path.glob(".mine*"))

    result = tune("org/model", "--output-dir", str(mine), "--force")
    assert result.exit_code == 0, result.output
    assert repo_files(mine) == set(MODEL_FILES) - {"original/consolidated.00.pth"}
    assert (mine / COMPLETE_MARKER).is_file() and not list(tmp_path.glob(".mine*"))


def test_a_file_is_replaced_only_with_force(hub, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    result = tune("org/model", "--output-dir", str(target))
    assert result.exit_code == 1 and "--force" in result.output
    assert target.read_text() == "keep me"
    assert tune("org/model", "--output-dir", str(target), "--force").exit_code == 0
    assert "config.json" in repo_files(target)


def test_another_repos_download_is_refused_naming_both(hub, tmp_path):
    hub.add_repo("org/other", {"config.json": b"{}"})
    out = tmp_path / "model"
    assert tune("org/model", "--output-dir", str(out)).exit_code == 0
    before = (out / "model.safetensors").read_bytes()
    result = tune("org/other", "--output-dir", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "'org/model'" in result.output and "'org/other'" in result.output
    assert "--force" in result.output
    assert (out / "model.safetensors").read_bytes() == before


def test_refresh_transfers_only_what_changed_and_keeps_added_files(hub, tmp_path):
    out = tmp_path / "model"
    assert tune("org/model", "--output-dir", str(out)).exit_code == 0
    (out / "my_notes.md").write_text("mine")
    gets = len(hub.file_gets("org/model", "model.safetensors"))
    hub.repo("org/model").files["config.json"] = b'{"v": 3}'
    result = tune("org/model", "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "config.json").read_bytes() == b'{"v": 3}'
    assert len(hub.file_gets("org/model", "model.safetensors")) == gets  # linked, not fetched
    assert (out / "my_notes.md").read_text() == "mine"
    assert hub.repo("org/model").sha in (out / COMPLETE_MARKER).read_text()
    assert not list(tmp_path.glob(".model*"))


def test_a_failed_refresh_leaves_the_earlier_download_whole(hub, tmp_path, monkeypatch):
    out = tmp_path / "model"
    assert tune("org/model", "--output-dir", str(out)).exit_code == 0
    old = {name: (out / name).read_bytes() for name in repo_files(out)}
    old_marker = (out / COMPLETE_MARKER).read_text()
    new_weights = b"\x01new-weights" * 64
    hub.repo("org/model").files["model.safetensors"] = new_weights
    original = hub_module._HubHandler._resolve
    broken = {"on": True}

    def flaky(self, path, *, head):
        if broken["on"] and path.endswith("/model.safetensors") and not head:
            raise hub_module._HubError(500, None, "internal error")
        return original(self, path, head=head)

    monkeypatch.setattr(hub_module._HubHandler, "_resolve", flaky)
    result = tune("org/model", "--output-dir", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{out} is as it was; rerunning resumes" in result.output
    assert {name: (out / name).read_bytes() for name in repo_files(out)} == old
    assert (out / COMPLETE_MARKER).read_text() == old_marker
    partial = list(tmp_path.glob(".model.*.partial"))
    assert len(partial) == 1 and not (partial[0] / COMPLETE_MARKER).exists()

    broken["on"] = False
    assert tune("org/model", "--output-dir", str(out)).exit_code == 0
    assert (out / "model.safetensors").read_bytes() == new_weights
    assert not partial[0].exists() and not list(tmp_path.glob(".model*"))


def test_a_bucket_prefix_of_other_objects_is_refused(hub, s3, tmp_path):
    from modeling import storage

    s3.create_bucket("dl-refuse")
    s3.put("dl-refuse/data/train.jsonl", b'{"text": "mine"}\n')
    result = tune("org/model", "--output-dir", "s3://dl-refuse/data")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "s3://dl-refuse/data" in result.output and "train.jsonl" in result.output
    assert "--force" in result.output
    assert storage.list_files("s3://dl-refuse/data") == ["train.jsonl"]

    target = "s3://dl-refuse/model"
    for _ in range(2):  # the second run replaces the first, its own output
        result = tune("org/model", "--output-dir", target)
        assert result.exit_code == 0, result.output
    listed = set(storage.list_files(target))
    assert listed == {*MODEL_FILES, COMPLETE_MARKER} - {"original/consolidated.00.pth"}


def test_a_huggingface_cli_download_is_refreshed_not_refused(hub, tmp_path):
    from huggingface_hub import snapshot_download

    out = tmp_path / "model"
    snapshot_download("org/model", local_dir=out, endpoint=hub.url)  # huggingface-cli's way
    gets = len(hub.file_gets("org/model", "model.safetensors"))
    result = tune("org/model", "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert len(hub.file_gets("org/model", "model.safetensors")) == gets
    assert '"repo_id": "org/model"' in (out / COMPLETE_MARKER).read_text()


def test_another_tunefleet_output_is_not_taken_for_a_download(hub, tmp_path):
    merged = tmp_path / "merged"  # what tune merge leaves behind a URI: marker, no record
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    (merged / COMPLETE_MARKER).write_text("complete\n")
    result = tune("org/model", "--output-dir", str(merged))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "tune download did not write" in result.output and "--force" in result.output
    assert (merged / "config.json").read_text() == "{}" and hub.requests == []
