"""``tune plan`` for Qwen 2.5: biases counted, the tied output counted once, CPU step measured."""

import pytest
import torch

from orchestrator.config import instantiate, load_config
from orchestrator.planning.planner import plan_memory
from tests.orchestrator.memory_probe import measure_step

# Published totals (see tests/modeling/test_builders_qwen2_5.py).
PUBLISHED = {"0.5B": 494_032_768, "7B": 7_615_616_512, "72B": 72_706_203_648}
QWEN_TINY = [
    "model._component_=modeling.qwen2_5.lora_qwen2_5",
    "model.vocab_size=768",
    "model.num_layers=2",
    "model.num_heads=4",
    "model.num_kv_heads=2",
    "model.embed_dim=256",
    "model.intermediate_dim=512",
    "model.max_seq_len=256",
    "tokenizer.max_seq_len=256",
]


@pytest.mark.parametrize("name", ["0.5B_full", "7B_full"])
def test_full_plans_count_the_published_parameters(name):
    plan = plan_memory(load_config(f"qwen2_5/{name}"), nodes=1, gpus_per_node=8)
    total = PUBLISHED[name.split("_")[0]]
    assert plan.params == total
    weights = plan.row("weights: trainable").without_ac + plan.row("weights: frozen").without_ac
    assert weights == pytest.approx(2 * total / 8, rel=1e-3)  # bf16, sharded over 8 ranks


@pytest.mark.parametrize("name", ["0.5B_lora", "7B_qlora", "72B_lora"])
def test_lora_plans_add_exactly_the_adapters(name):
    cfg = load_config(f"qwen2_5/{name}")
    plan = plan_memory(cfg, nodes=1, gpus_per_node=8, seq_len=1024)
    with torch.device("meta"):
        model = instantiate(cfg.model)
    adapters = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert plan.params == PUBLISHED[name.split("_")[0]] + adapters


@pytest.mark.parametrize("checkpointing", [False, True], ids=["no_ac", "ac"])
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_plan_matches_a_measured_cpu_step_within_20_percent(tied, checkpointing):
    overrides = [f"+model.tie_word_embeddings={tied}", "model.apply_lora_to_output=False"]
    cfg = load_config("demo", [*QWEN_TINY, *overrides])
    measured = measure_step(cfg, checkpointing)
    plan = plan_memory(cfg, nodes=1, gpus_per_node=1, gpu="cpu")
    rows = {
        "weights": ("weights: trainable", "weights: frozen", "weights: NF4 base", "buffers: RoPE"),
        "gradients": ("gradients",),
        "optimizer": ("optimizer state",),
        "activations": ("activations",),
    }
    pick = (lambda r: r.with_ac) if checkpointing else (lambda r: r.without_ac)
    for component, actual in measured.items():
        predicted = sum(pick(plan.row(n)) for n in rows[component])
        assert predicted == pytest.approx(actual, rel=0.2), (component, measured)
