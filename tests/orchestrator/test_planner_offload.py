"""``tune plan`` with the config's ``fsdp_cpu_offload`` and ``sharding``."""

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.config import load_config
from orchestrator.planning.planner import plan_memory

OFFLOADED = ("weights: trainable", "weights: frozen", "gradients", "optimizer state")


def test_offload_moves_sharded_state_to_the_host():
    on_gpu = plan_memory(load_config("llama3/8B_full"), nodes=1, gpus_per_node=8)
    offloaded = plan_memory(
        load_config("llama3/8B_full", ["fsdp_cpu_offload=True"]), nodes=1, gpus_per_node=8
    )
    moved = sum(on_gpu.row(name).with_ac for name in OFFLOADED)
    assert moved > 0
    assert offloaded.total(True) == on_gpu.total(True) - moved
    assert offloaded.host_bytes_per_node() == 8 * moved
    assert on_gpu.host_bytes_per_node() == 0


def test_sharding_comes_from_the_config_unless_the_flag_says_otherwise():
    cfg = load_config("llama3/8B_lora", ["sharding=fsdp"])
    assert plan_memory(cfg, nodes=2, gpus_per_node=8).shard_size == 16
    assert plan_memory(cfg, nodes=2, gpus_per_node=8, sharding="hsdp").shard_size == 8
    default = load_config("llama3/8B_lora")
    assert plan_memory(default, nodes=2, gpus_per_node=8).shard_size == 8


def test_offload_shows_host_memory_in_the_table():
    result = CliRunner().invoke(
        app, ["plan", "--config", "llama3/8B_full", "--gpus-per-node", "8", "fsdp_cpu_offload=True"]
    )
    assert result.exit_code == 0, result.output
    assert "host per node" in result.output and "host, sharded 1/8" in result.output


@pytest.mark.parametrize("value", ["zero3", "FSDP"])
def test_unknown_sharding_in_the_config_is_refused(value):
    result = CliRunner().invoke(app, ["plan", "--config", "llama3/8B_lora", f"sharding={value}"])
    assert result.exit_code == 1
    assert f"must be one of fsdp, hsdp, got '{value}'" in result.output
    assert "Traceback" not in result.output
