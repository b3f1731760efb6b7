"""Runs whose every input and output is an ``s3://`` URI, on a real S3 endpoint (moto).

The emulator runs on 127.0.0.1 for this module; the config names only URIs, and the run
starts from an empty working directory, so nothing can come from a shared disk.
"""

import threading

import pytest
import torch
from safetensors.torch import load_file

from modeling import storage
from orchestrator import finetune
from tests.orchestrator.recipe_fixtures import kill_a_worker_once_past, s3_overrides

pytestmark = pytest.mark.usefixtures("ray_cluster")
RUN = ["batch_size=3", "max_steps_per_epoch=30", "save_every_n_steps=10"]


def adapter_of(bucket, out, tmp_path):
    local = storage.cached_local_dir(f"s3://{bucket}/{out}/adapter", tmp_path / "cache")
    return load_file(local / "adapter_model.safetensors")


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    cwd = tmp_path / "empty"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_two_workers_read_inputs_from_s3_and_write_every_output_there(
    s3, demo_bucket, empty_cwd, tmp_path, demo_assets_dir
):
    s3.reset_counts()
    result = finetune(
        "demo", s3_overrides(demo_bucket, *RUN, "+max_shard_size=100KB"), num_workers=2
    )
    root = f"s3://{demo_bucket}"

    assert str(result.output_dir) == f"{root}/out"
    assert str(result.adapter_dir) == f"{root}/out/adapter"
    assert str(result.merged_dir) == f"{root}/out/merged"
    assert str(result.checkpoint_dir) == f"{root}/ray/demo"
    assert [m["step"] for m in result.metrics] == list(range(1, 31))
    objects = storage.list_files(f"{root}/out")
    for name in (
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "adapter/.tunefleet-complete",
        "merged/model.safetensors.index.json",
        "merged/config.json",
        "merged/.tunefleet-complete",
        "metrics.jsonl",
        "loss_curve.png",
    ):
        assert name in objects
    shards = [name for name in objects if name.startswith("merged/model-")]
    assert len(shards) >= 2  # written by both ranks, each its own shards
    checkpoints = {f.split("/")[0] for f in storage.list_files(f"{root}/ray/demo")}
    assert any(name.startswith("checkpoint_") for name in checkpoints)
    assert not list(empty_cwd.iterdir())  # nothing was written where the run started

    # The two ranks together read each base weight once to load, then rank 0 reads the
    # base once more to merge: about twice the file. One full read per rank would be 3x.
    base = f"{demo_bucket}/base/model.safetensors"
    size = storage.size(f"{root}/base/model.safetensors")
    assert 2 * size * 0.98 < s3.bytes_served(base) < 2.2 * size

    merged = storage.cached_local_dir(f"{root}/out/merged", tmp_path / "cache")
    adapter_dir = storage.cached_local_dir(f"{root}/out/adapter", tmp_path / "cache")
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    tokens = torch.randint(0, 768, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        merged_logits = transformers.AutoModelForCausalLM.from_pretrained(merged)(tokens).logits
        base_model = transformers.AutoModelForCausalLM.from_pretrained(demo_assets_dir / "model")
        peft_logits = peft.PeftModel.from_pretrained(base_model, adapter_dir)(tokens).logits
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-4, rtol=1e-4)


def test_killed_worker_resumes_from_the_s3_checkpoint_to_the_same_adapter(
    s3, demo_bucket, empty_cwd, tmp_path
):
    reference = finetune("demo", s3_overrides(demo_bucket, *RUN, out="reference"), num_workers=2)
    expected = adapter_of(demo_bucket, "reference", tmp_path)
    assert reference.metrics[-1]["step"] == 30
    killed = []
    watcher = threading.Thread(
        target=kill_a_worker_once_past,  # metrics reach S3 with each checkpoint
        args=(f"s3://{demo_bucket}/killed/metrics.jsonl", 10, killed, 0.2),
        daemon=True,
    )
    watcher.start()
    result = finetune(
        "demo",
        s3_overrides(demo_bucket, *RUN, "run_name=killed", "max_failures=1", out="killed"),
        num_workers=2,
    )
    watcher.join(timeout=1)
    assert killed, "the run finished before a worker could be killed"
    assert result.metrics[-1]["step"] == 30
    actual = adapter_of(demo_bucket, "killed", tmp_path)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-6, rtol=0)
