"""``tune plan`` on the Llama 3.1/3.2/3.3 configs: tied output counted once, scaled RoPE tables."""

import pytest
import torch
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.config import load_config
from orchestrator.planning.model_census import census
from orchestrator.planning.planner import plan_memory

BF16 = 2  # bytes


@pytest.mark.parametrize(
    ("name", "params", "head_dim", "tied"),
    [
        ("llama3_1/8B_full", 8_030_261_248, 128, False),
        ("llama3_2/1B_full", 1_235_814_400, 64, True),
    ],
)
def test_census_counts_each_parameter_once_and_the_128k_rope_table(name, params, head_dim, tied):
    cfg = load_config(name)
    counted = census(cfg.model, torch.bfloat16)
    assert counted.param_bytes == counted.trainable_bytes == params * BF16
    vocab, dim = counted.vocab_size, counted.embed_dim
    # Root parameters: the embedding, the final norm and (untied only) the output matrix.
    assert counted.root_dense_bytes == (vocab * dim * (1 if tied else 2) + dim) * BF16
    assert (counted.output.in_dim, counted.output.out_dim) == (dim, vocab)
    # One cos and one sin table of 131072 positions x head_dim/2, shared by every layer.
    assert counted.max_seq_len == 131_072
    assert counted.other_buffer_bytes == 2 * 131_072 * (head_dim // 2) * BF16
    plan = plan_memory(cfg, nodes=1, gpus_per_node=8, config_name=name)
    assert plan.params == params
    assert plan.row("buffers: RoPE").without_ac == counted.other_buffer_bytes


def test_lora_on_a_tied_model_leaves_the_embedding_frozen():
    cfg = load_config("llama3_2/1B_lora")
    counted = census(cfg.model, torch.bfloat16)
    assert not counted.embeddings_trainable and not counted.output.trainable
    assert counted.frozen_bytes == 1_235_814_400 * BF16
    rank, dim, inter, kv, layers = 64, 2048, 8192, 512, 16
    # q_proj, v_proj, output_proj and the three MLP projections, each A (r x in) + B (out x r).
    per_layer = rank * ((dim + dim) + (dim + kv) + (dim + dim) + 2 * (dim + inter) + (inter + dim))
    assert counted.trainable_bytes == layers * per_layer * BF16


@pytest.mark.parametrize("config", ["llama3_1/70B_lora", "llama3_2/3B_lora", "llama3_3/70B_lora"])
def test_cli_plans_the_new_configs(config):
    result = CliRunner().invoke(app, ["plan", "-c", config, "--gpus-per-node", "8"])
    assert result.exit_code == 0, result.output
    assert "buffers: RoPE" in result.output and config in result.output
