"""Inputs from the Hub (``hf://``) and bad URIs: each gets one clear error before any worker.

The Hub is the local server in ``tests/hub_server.py`` (it answers Range requests as the
Hub does); S3 is moto on 127.0.0.1.
"""

import socket
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import finetune
from orchestrator.cli import app
from orchestrator.datasets import sources
from tests.orchestrator import recipe_fixtures

pytestmark = pytest.mark.usefixtures("ray_cluster")
DATA = Path(sources.__file__).parent.parent / "data" / "demo_instructions.json"
SHORT = ["batch_size=4", "max_steps_per_epoch=4", "save_every_n_steps=null"]


def uri_overrides(checkpoint, tokenizer, data, output, *extra):
    return recipe_fixtures.uri_overrides(checkpoint, tokenizer, data, output, *SHORT, *extra)


@pytest.fixture
def hub_repo(hub_env, demo_assets_dir):
    """The demo base model, tokenizer and data as one Hub model repo."""
    files = {p.name: p.read_bytes() for p in (demo_assets_dir / "model").iterdir()}
    files["tokenizer.model"] = (demo_assets_dir / "tokenizer.model").read_bytes()
    files["data/demo.json"] = DATA.read_bytes()
    hub_env.add_repo("org/tiny-llama", files)
    return hub_env


def test_two_workers_train_from_the_hub_reading_the_base_once(hub_repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repo = "hf://org/tiny-llama"
    out = tmp_path / "out"
    result = finetune(
        "demo",
        uri_overrides(repo, f"{repo}/tokenizer.model", f"{repo}/data/demo.json", out),
        num_workers=2,
    )
    assert [m["step"] for m in result.metrics] == [1, 2, 3, 4]
    assert (out / "merged" / "model.safetensors.index.json").is_file()
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    size = len(hub_repo.repo("org/tiny-llama").files["model.safetensors"])
    # Loading: both ranks' rows add up to the file once; merging reads it once more.
    assert 2 * size * 0.98 < hub_repo.bytes_served("org/tiny-llama", "model.safetensors")
    assert hub_repo.bytes_served("org/tiny-llama", "model.safetensors") < 2.2 * size


@pytest.fixture
def s3_bucket(s3):
    """A fresh, empty bucket on the emulator; its name."""
    bucket = f"bad-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    return bucket


def run_cli(*overrides):
    start = time.monotonic()
    result = CliRunner().invoke(app, ["run", "lora_finetune", "--config", "demo", *overrides])
    return result, time.monotonic() - start


def assert_clean_error(result, *needles):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_missing_checkpoint_object_is_named_before_any_worker(s3_bucket, demo_assets_dir, tmp_path):
    root = f"s3://{s3_bucket}"
    result, took = run_cli(
        *uri_overrides(f"{root}/nothing-here", f"{root}/tok.model", f"{root}/d.json", f"{root}/out")
    )
    assert_clean_error(result, f"{root}/nothing-here", "holds no objects")
    assert took < 30
    from modeling import storage

    assert not storage.exists(f"{root}/out/adapter")  # nothing that looks complete


def test_missing_bucket_and_refused_credentials_are_named(s3_bucket, s3, tmp_path):
    result, _ = run_cli(
        *uri_overrides("s3://no-such-bucket-x/base", "t", "d", tmp_path / "out"),
    )
    assert_clean_error(result, "s3://no-such-bucket-x does not exist")
    with s3.enforce_auth():
        result, _ = run_cli(*uri_overrides(f"s3://{s3_bucket}/base", "t", "d", tmp_path / "out"))
    assert_clean_error(result, f"s3://{s3_bucket}/base", "credentials")


def test_unreachable_endpoint_fails_in_seconds(s3_bucket, monkeypatch, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    result, took = run_cli(*uri_overrides("s3://any/base", "t", "d", tmp_path / "out"))
    assert_clean_error(result, "s3://any/base", "AWS_ENDPOINT_URL")
    assert took < 15


def test_gated_hub_repo_without_a_token_says_how_to_get_access(hub_env, demo_assets_dir, tmp_path):
    files = {p.name: p.read_bytes() for p in (demo_assets_dir / "model").iterdir()}
    hub_env.add_repo("org/gated", files, gated=True, token="hf_granted")
    result, _ = run_cli(*uri_overrides("hf://org/gated", "t", "d", tmp_path / "out"))
    assert_clean_error(result, "hf://org/gated", "HF_TOKEN")


def test_download_to_s3_publishes_a_complete_model(s3_bucket, hub_env, demo_assets_dir):
    from modeling import storage
    from modeling.checkpointing import FullModelHFCheckpointer

    files = {p.name: p.read_bytes() for p in (demo_assets_dir / "model").iterdir()}
    hub_env.add_repo("org/dl", files)
    target = f"s3://{s3_bucket}/models/dl"
    result = CliRunner().invoke(app, ["download", "org/dl", "--output-dir", target])
    assert result.exit_code == 0, result.output
    assert target in result.output
    assert set(storage.list_files(target)) == {*files, ".tunefleet-complete"}
    remote = FullModelHFCheckpointer(target).load_checkpoint()
    local = FullModelHFCheckpointer(demo_assets_dir / "model").load_checkpoint()
    assert remote.keys() == local.keys()
    assert all(remote[k].equal(local[k]) for k in local)


def test_meta_checkpoint_behind_s3_is_fetched_once_per_node(s3_bucket, s3, tmp_path, monkeypatch):
    from modeling import storage
    from modeling.checkpointing import FullModelHFCheckpointer, FullModelMetaCheckpointer
    from tests.modeling.checkpoint_fixtures import saved_hf
    from tests.modeling.test_checkpointing_meta import write_meta

    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "cache"))
    _, hf_dir = saved_hf("llama3", tmp_path / "hf")
    state = FullModelHFCheckpointer(hf_dir).load_checkpoint()
    local = write_meta("llama3", state, tmp_path / "meta", ranks=2)
    storage.upload_dir(local, f"s3://{s3_bucket}/meta")
    s3.reset_counts()
    for _ in range(2):  # a second reader on the node (another rank) uses the cached copy
        loaded = FullModelMetaCheckpointer(f"s3://{s3_bucket}/meta").load_checkpoint()
        assert all(loaded[k].equal(v) for k, v in state.items())
    assert s3.gets(f"{s3_bucket}/meta/consolidated.00.pth") == 1
    assert s3.gets(f"{s3_bucket}/meta/consolidated.01.pth") == 1


def test_merge_refuses_a_remote_adapter_that_was_never_completed(s3_bucket, s3, tmp_path):
    s3.put(f"{s3_bucket}/partial/adapter/adapter_config.json", b"{}")  # no marker: cut short
    result = CliRunner().invoke(
        app,
        [
            "merge",
            "--base",
            str(tmp_path),
            "--adapter",
            f"s3://{s3_bucket}/partial/adapter",
            "--output",
            str(tmp_path / "merged"),
        ],
    )
    assert_clean_error(result, f"s3://{s3_bucket}/partial/adapter", "incomplete")
    assert not (tmp_path / "merged").exists()


def test_validate_reads_a_config_file_behind_a_uri(s3_bucket, s3, tmp_path, monkeypatch):
    from orchestrator.config import builtin_config_path

    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "cache"))
    s3.put(f"{s3_bucket}/configs/llama3.yaml", builtin_config_path("llama3/8B_lora").read_bytes())
    result = CliRunner().invoke(app, ["validate", f"s3://{s3_bucket}/configs/llama3.yaml"])
    assert result.exit_code == 0, result.output
    missing = CliRunner().invoke(app, ["validate", f"s3://{s3_bucket}/configs/nope.yaml"])
    assert_clean_error(missing, f"s3://{s3_bucket}/configs/nope.yaml")


def test_merge_reads_an_adapter_from_s3_and_writes_the_model_there(s3_bucket, s3, tmp_path):
    from modeling import storage
    from modeling.checkpointing.atomic import publish_directory
    from modeling.peft import get_adapter_params
    from tests.modeling.test_checkpointing_peft import LORA, trained_lora

    model, ckpt, base = trained_lora(tmp_path)
    adapter = ckpt.save_checkpoint(
        None, adapter_weights=get_adapter_params(model), adapter_config=LORA
    )["adapter"]
    publish_directory(adapter, f"s3://{s3_bucket}/adapter")
    target = f"s3://{s3_bucket}/merged"
    args = ["--base", str(base), "--adapter", f"s3://{s3_bucket}/adapter", "--output", target]
    result = CliRunner().invoke(app, ["merge", *args])
    assert result.exit_code == 0, result.output
    local = tmp_path / "local-merged"
    args = ["--base", str(base), "--adapter", str(adapter), "--output", str(local)]
    assert CliRunner().invoke(app, ["merge", *args]).exit_code == 0
    assert ".tunefleet-complete" in storage.list_files(target)
    for path in local.iterdir():
        assert storage.read_bytes(f"{target}/{path.name}") == path.read_bytes(), path.name
