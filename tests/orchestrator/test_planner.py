import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.config import load_config
from orchestrator.planning.gpus import GIB
from orchestrator.planning.planner import plan_memory
from tests.orchestrator.memory_probe import measure_step
from tests.orchestrator.recipe_fixtures import TINY_MODEL

# The config recipe_fixtures.demo_config builds, without generating its checkpoint and
# tokenizer (a memory plan needs neither); "wide" makes the layers, not the loss, dominate.
SIZES = {
    "tiny": TINY_MODEL,
    "wide": [
        *TINY_MODEL,
        "model.num_layers=2",
        "model.embed_dim=256",
        "model.intermediate_dim=512",
    ],
}
LORA_KEYS = (
    "lora_attn_modules",
    "apply_lora_to_mlp",
    "apply_lora_to_output",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
)
METHODS = {
    "lora": [],
    "full": ["model._component_=modeling.llama3.llama3", *[f"~model.{k}" for k in LORA_KEYS]],
    "qlora": ["+model.quantize_base=True"],
}
COMPONENTS = {
    "weights": ("weights: trainable", "weights: frozen", "weights: NF4 base", "buffers: RoPE"),
    "gradients": ("gradients",),
    "optimizer": ("optimizer state",),
    "activations": ("activations",),
}


def _predicted(plan, checkpointing: bool) -> dict[str, int]:
    pick = (lambda r: r.with_ac) if checkpointing else (lambda r: r.without_ac)
    return {k: sum(pick(plan.row(n)) for n in rows) for k, rows in COMPONENTS.items()}


@pytest.mark.parametrize("checkpointing", [False, True], ids=["no_ac", "ac"])
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("size", list(SIZES))
def test_plan_matches_a_measured_cpu_step_within_20_percent(size, method, checkpointing):
    cfg = load_config("demo", [*SIZES[size], *METHODS[method]])
    measured = measure_step(cfg, checkpointing)
    plan = plan_memory(cfg, nodes=1, gpus_per_node=1, gpu="cpu")
    predicted = _predicted(plan, checkpointing)
    for component, actual in measured.items():
        assert predicted[component] == pytest.approx(actual, rel=0.2), (component, measured)


def test_activation_checkpointing_and_qlora_change_what_they_should():
    cfg = load_config("demo", SIZES["wide"])
    lora = plan_memory(cfg, nodes=1, gpus_per_node=1, gpu="cpu")
    assert lora.row("activations").with_ac < lora.row("activations").without_ac / 2
    assert lora.row("AC recompute (1 layer)").without_ac == 0
    qlora = plan_memory(
        load_config("demo", [*SIZES["wide"], "+model.quantize_base=True"]),
        nodes=1,
        gpus_per_node=1,
        gpu="cpu",
    )
    assert qlora.method == "QLoRA" and lora.method == "LoRA"
    assert qlora.row("weights: NF4 base").without_ac > 0
    # linear_nf4 keeps nothing of the dequantised base for backward: LoRA's activations.
    assert qlora.row("activations").without_ac == lora.row("activations").without_ac


def test_sharding_divides_params_and_nf4_bases():
    cfg = load_config("llama3/8B_qlora")
    one = plan_memory(cfg, nodes=1, gpus_per_node=1)
    fsdp = plan_memory(cfg, nodes=2, gpus_per_node=8, sharding="fsdp")
    hsdp = plan_memory(cfg, nodes=2, gpus_per_node=8)  # several nodes: HSDP, as the recipe
    assert (fsdp.shard_size, hsdp.shard_size) == (16, 8)
    assert plan_memory(cfg, nodes=1, gpus_per_node=8).sharding == "fsdp"
    frozen = one.row("weights: frozen").without_ac
    assert fsdp.row("weights: frozen").without_ac == frozen // 16
    assert hsdp.row("weights: frozen").without_ac == frozen // 8
    nf4 = one.row("weights: NF4 base").without_ac
    assert fsdp.row("weights: NF4 base").without_ac == nf4 // 16
    assert hsdp.row("weights: NF4 base").without_ac == nf4 // 8
    # 8B base linears at 0.5625 bytes per parameter: 6.98e9 * 0.5625 = 3.93e9 bytes.
    assert nf4 == pytest.approx(6.98e9 * 0.5625, rel=0.01)


def test_llama3_8b_lora_on_8_h100s_fits_with_checkpointing_at_full_length():
    plan = plan_memory(load_config("llama3/8B_lora"), nodes=1, gpus_per_node=8)
    assert plan.seq_len == 8192 and plan.dtype == "bf16"
    assert plan.params == pytest.approx(8.03e9, rel=0.01)
    assert not plan.fits(False) and plan.fits(True)
    assert 10 * GIB < plan.total(True) < plan.usable_bytes


def test_cli_prints_the_table_and_exits_0():
    result = CliRunner().invoke(
        app,
        [
            "plan",
            "--config",
            "llama3/8B_lora",
            "--nodes",
            "1",
            "--gpus-per-node",
            "8",
            "--seq-len",
            "2048",
        ],
    )
    assert result.exit_code == 0, result.output
    for text in (
        "weights: frozen",
        "activations",
        "optimizer state",
        "FSDP2 gather/reduce",
        "GPU capacity",
        "usable (90%)",
        "h100-80gb",
        "batch 2 x 2048 tokens",
    ):
        assert text in result.output
    assert "With the config's activation checkpointing (off): fits." in result.output


def test_cli_plan_that_does_not_fit_says_so_and_exits_0_or_2_with_strict():
    args = ["plan", "-c", "llama3/70B_lora", "--gpus-per-node", "1", "--gpu", "l4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "DOES NOT FIT" in result.output
    strict = CliRunner().invoke(app, [*args, "--strict"])
    assert strict.exit_code == 2 and "DOES NOT FIT" in strict.output


def test_cli_qlora_notes_sharded_nf4_and_takes_overrides():
    result = CliRunner().invoke(
        app,
        [
            *("plan", "--config", "llama3/8B_qlora", "batch_size=1", "--gpu", "L4"),
            *("--seq-len", "1024", "--gpus-per-node", "2"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "batch 1 x 1024 tokens" in result.output
    assert "NF4 base weights are sharded by rows over the shard group" in result.output
    assert "sharded 1/2 by rows" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "h100"], "Unknown --gpu 'h100'. Did you mean 'h100-80gb'?"),
        (["--gpu", "tpu"], "Known: h100-80gb, h200"),
        (["--nodes", "0"], "--nodes must be at least 1, got 0"),
        (["--gpus-per-node", "-1"], "--gpus-per-node must be at least 1, got -1"),
        (["--sharding", "ddp"], "sharding) must be one of fsdp, hsdp, got 'ddp'"),
        (["--seq-len", "100000"], "--seq-len 100000 is outside 1..8192"),
    ],
)
def test_cli_bad_input_exits_1_with_the_fix(args, message):
    result = CliRunner().invoke(app, ["plan", "--config", "llama3/8B_lora", *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_unknown_config_exits_1_with_a_suggestion():
    result = CliRunner().invoke(app, ["plan", "--config", "llama3/8B_lorra"])
    assert result.exit_code == 1
    assert "Did you mean 'llama3/8B_lora'?" in result.output
