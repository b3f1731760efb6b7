"""Component paths, torchtune aliases, instantiate, recipe names and validation."""

import importlib

import pytest
import torch
from omegaconf import OmegaConf

import modeling.llama2
import modeling.llama3
import modeling.phi3
from modeling.builders import decoder_sizes
from orchestrator.config import (
    ConfigError,
    default_recipe,
    instantiate,
    load_config,
    resolve_component,
    resolve_recipe,
    validate_config,
)
from orchestrator.config.aliases import EXACT_ALIASES, alias_for
from orchestrator.config.components import check_call

TINY = dict(vocab_size=32, num_layers=1, num_heads=2, num_kv_heads=1, embed_dim=16, max_seq_len=8)


def pair(first, second=2, *, scale=1):
    """A component for tests: returns its arguments."""
    return (first, second, scale)


def wrap(inner, label="x"):
    """A component taking another component's result."""
    return {"inner": inner, "label": label}


def schedule(optimizer, num_warmup_steps, num_training_steps):
    """A scheduler-shaped component: the recipe passes the optimizer and the step count."""
    return (optimizer, num_warmup_steps, num_training_steps)


def forward_all(**kwargs):
    """A component that takes any keyword."""
    return kwargs


# --- resolution ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("torchtune.models.llama3.lora_llama3_8b", modeling.llama3.lora_llama3_8b),
        ("torchtune.models.llama3.llama3_tokenizer", modeling.llama3.llama3_tokenizer),
        ("torchtune.models.phi3.phi3_mini_tokenizer", modeling.phi3.phi3_mini_tokenizer),
        ("torchtune.models.llama2.qlora_llama2_7b", modeling.llama2.qlora_llama2_7b),
        ("modeling.llama3.lora_llama3_8b", modeling.llama3.lora_llama3_8b),
        ("torch.optim.AdamW", torch.optim.AdamW),
    ],
)
def test_resolve_component(path, expected):
    assert resolve_component(path) is expected


@pytest.mark.parametrize(
    "path",
    [
        "torchtune.utils.FullModelHFCheckpointer",
        "torchtune.training.FullModelHFCheckpointer",
        "torchtune.training.checkpointing.FullModelHFCheckpointer",
        "torchtune.utils.FullModelMetaCheckpointer",
        "torchtune.training.FullModelMetaCheckpointer",
    ],
)
def test_torchtune_checkpointers_resolve_to_ours(path):
    checkpointing = pytest.importorskip("modeling.checkpointing")
    name = path.rsplit(".", 1)[-1]
    assert resolve_component(path) is getattr(checkpointing, name)


def test_alias_table_targets():
    assert alias_for("torchtune.datasets.alpaca_cleaned_dataset").target == (
        "orchestrator.datasets.alpaca_cleaned_dataset"
    )
    assert alias_for("torchtune.modules.loss.CEWithChunkedOutputLoss").target == (
        "orchestrator.training.loss.CEWithChunkedOutputLoss"
    )
    scheduler = "orchestrator.training.lr_schedulers.get_cosine_schedule_with_warmup"
    assert alias_for("torchtune.modules.get_cosine_schedule_with_warmup").target == scheduler
    assert alias_for("torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup").target == (
        scheduler
    )
    wandb = alias_for("torchtune.training.metric_logging.WandBLogger")
    assert wandb.target == "orchestrator.training.logger_backends.WandBLogger"
    assert wandb.note is None
    assert alias_for("torchtune.training.setup_torch_profiler").target == (
        "orchestrator.training.profiler.setup_torch_profiler"
    )
    assert alias_for("bitsandbytes.optim.PagedAdamW").target == "torch.optim.AdamW"
    assert alias_for("torch.optim.AdamW") is None
    # every exact alias names a module of this project or torch
    assert all(
        a.target.startswith(("modeling.", "orchestrator.", "torch."))
        for a in EXACT_ALIASES.values()
    )


@pytest.mark.parametrize(
    "name",
    [
        "alpaca_dataset",
        "alpaca_cleaned_dataset",
        "instruct_dataset",
        "chat_dataset",
        "text_completion_dataset",
    ],
)
def test_torchtune_datasets_resolve_to_ours(name):
    datasets = pytest.importorskip("orchestrator.datasets")
    assert resolve_component(f"torchtune.datasets.{name}") is getattr(datasets, name)


def test_typo_in_builder_name_suggests_closest():
    with pytest.raises(
        ConfigError, match=r"no attribute 'lora_llama3_8bb'.*Did you mean 'lora_llama3_8b'"
    ):
        resolve_component("modeling.llama3.lora_llama3_8bb")


def test_typo_in_module_name_suggests_submodule():
    with pytest.raises(
        ConfigError, match=r"modeling has no attribute 'lama3'.*Did you mean 'llama3'"
    ):
        resolve_component("modeling.lama3.llama3_8b")


def test_aliased_typo_names_both_paths():
    with pytest.raises(ConfigError) as err:
        resolve_component("torchtune.models.llama3.lora_llama3_8bb")
    message = str(err.value)
    assert (
        "torchtune.models.llama3.lora_llama3_8bb maps to modeling.llama3.lora_llama3_8bb" in message
    )
    assert "Did you mean 'lora_llama3_8b'" in message


def test_unmapped_torchtune_path_is_one_line_pointing_at_the_docs():
    with pytest.raises(ConfigError) as err:
        resolve_component("torchtune.modules.peft.LoRALinear")
    assert str(err.value) == (
        "torchtune.modules.peft.LoRALinear is a torchtune path with no Tunefleet equivalent. "
        "The supported ones are listed in docs/torchtune_compatibility.md"
    )


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("no_such_top_module_xyz.thing", "no module named 'no_such_top_module_xyz'"),
        ("not a path", "not a dotted Python path"),
        ("", "dotted path string"),
        ("torch.float32", "not a callable"),
    ],
)
def test_bad_paths(path, match):
    with pytest.raises(ConfigError, match=match):
        resolve_component(path)


# --- instantiate -----------------------------------------------------------------------


def test_instantiate_positional_args_first_and_kwargs_override():
    node = OmegaConf.create({"_component_": f"{__name__}.pair", "second": 5, "scale": 3})
    assert instantiate(node, 1) == (1, 5, 3)
    assert instantiate(node, 1, scale=7) == (1, 5, 7)


def test_instantiate_nested_components_and_interpolation():
    cfg = OmegaConf.create(
        {
            "label": "from-root",
            "outer": {
                "_component_": f"{__name__}.wrap",
                "inner": {"_component_": f"{__name__}.pair", "first": 4},
                "label": "${label}",
            },
        }
    )
    assert instantiate(cfg.outer) == {"inner": (4, 2, 1), "label": "from-root"}


def test_instantiate_optimizer_with_params():
    param = torch.nn.Parameter(torch.zeros(2))
    node = OmegaConf.create({"_component_": "torch.optim.AdamW", "lr": 1e-3, "weight_decay": 0.1})
    optimizer = instantiate(node, [param])
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(0.1)


def test_instantiate_torchtune_model_path_builds_our_model():
    node = {
        "_component_": "torchtune.models.llama3.lora_llama3",
        "lora_attn_modules": ["q_proj", "v_proj"],
        "lora_rank": 2,
        **TINY,
    }
    model = instantiate(node)
    logits = model(torch.zeros(1, 4, dtype=torch.long))
    assert logits.shape == (1, 4, TINY["vocab_size"])
    assert any(name.endswith("lora_a.weight") for name, _ in model.named_parameters())


def test_tiny_builders_are_components_that_validate_and_build():
    """A config names a tiny size like any published one: no size keys, LoRA keys bind."""
    node = {
        "_component_": "modeling.llama3.lora_llama3_tiny",
        "lora_attn_modules": ["q_proj", "v_proj"],
        "lora_rank": 2,
    }
    assert default_recipe({"model": node}) == "lora_finetune"
    assert default_recipe({"model": {"_component_": "modeling.gemma.gemma_tiny"}}) == (
        "full_finetune"
    )
    model = instantiate(node)
    logits = model(torch.zeros(1, 4, dtype=torch.long))
    assert logits.shape == (1, 4, 768)
    assert any(name.endswith("lora_a.weight") for name, _ in model.named_parameters())
    with pytest.raises(ConfigError, match=r"lora_llama3_tiny .*: unexpected argument 'num_layers'"):
        instantiate({**node, "num_layers": 1})


@pytest.mark.parametrize("family", ["llama3", "llama2", "mistral", "phi3", "gemma"])
def test_decoder_sizes_rebuild_a_sized_model(family):
    """decoder_sizes turns a sized builder back into generic keywords (demo assets use it)."""
    module = importlib.import_module(f"modeling.{family}")
    with torch.device("meta"):
        tiny = getattr(module, f"lora_{family}_tiny")(["q_proj"])
        rebuilt = getattr(module, family)(**decoder_sizes(tiny))
    shapes = {k: v.shape for k, v in rebuilt.state_dict().items()}
    base = {k: v.shape for k, v in tiny.state_dict().items() if "lora_" not in k}
    assert shapes == base


def test_instantiate_unexpected_argument_suggests_closest():
    node = {"_component_": f"{__name__}.pair", "first": 1, "scael": 2}
    with pytest.raises(ConfigError, match=r"unexpected argument 'scael'.*Did you mean 'scale'"):
        instantiate(node)


def test_instantiate_missing_argument_and_missing_component():
    with pytest.raises(ConfigError, match="missing required argument 'first'"):
        instantiate({"_component_": f"{__name__}.pair"})
    with pytest.raises(ConfigError, match="no _component_"):
        instantiate({"lr": 1})
    assert instantiate(None) is None


def test_instantiate_missing_value_names_the_key():
    cfg = OmegaConf.create({"opt": {"_component_": "torch.optim.SGD", "lr": "???"}})
    with pytest.raises(ConfigError, match="opt.lr"):
        instantiate(cfg.opt, [torch.nn.Parameter(torch.zeros(1))])


def test_paged_optimizer_is_replaced_with_a_warning():
    node = {"_component_": "bitsandbytes.optim.PagedAdamW", "lr": 1e-3}
    with pytest.warns(UserWarning, match="replaced by torch.optim.AdamW"):
        optimizer = instantiate(node, [torch.nn.Parameter(torch.zeros(1))])
    assert type(optimizer) is torch.optim.AdamW


def test_torchtune_logger_builds_ours_with_its_arguments(tmp_path):
    backends = pytest.importorskip("orchestrator.training.logger_backends")
    node = {"_component_": "torchtune.training.metric_logging.DiskLogger", "log_dir": tmp_path}
    logger = instantiate(node, filename="run.txt")
    assert isinstance(logger, backends.DiskLogger)
    assert logger.path_to_log_file() == tmp_path / "run.txt"
    logger.close()


def test_check_call_reports_each_problem():
    assert check_call(pair, (1,), {"scale": 2}) == []
    assert check_call(pair, (1,), {"first": 2}) == [
        ("first", "'first' is passed by the recipe; remove it from the config")
    ]
    assert check_call(pair, (), {}) == [("first", "missing required argument 'first'")]
    assert check_call(pair, (1, 2, 3), {})[0][0] is None  # too many positional
    assert check_call(forward_all, (), {"anything": 1}) == []  # **kwargs accepts anything


# --- recipes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lora_finetune", "lora_finetune"),
        ("full_finetune", "full_finetune"),
        ("lora_finetune_single_device", "lora_finetune"),
        ("lora_finetune_distributed", "lora_finetune"),
        ("full_finetune_single_device", "full_finetune"),
        ("full_finetune_distributed", "full_finetune"),
    ],
)
def test_resolve_recipe(name, expected):
    assert resolve_recipe(name) == expected


def test_unknown_recipe_lists_known_and_closest():
    with pytest.raises(ConfigError) as err:
        resolve_recipe("lora_finetune_singel_device")
    message = str(err.value)
    assert "Did you mean 'lora_finetune_single_device'?" in message
    assert "full_finetune_distributed" in message


def test_default_recipe_from_model_or_recipe_key():
    assert (
        default_recipe({"model": {"_component_": "modeling.llama3.lora_llama3_8b"}})
        == "lora_finetune"
    )
    assert default_recipe(
        {"model": {"_component_": "torchtune.models.mistral.qlora_mistral_7b"}}
    ) == ("lora_finetune")
    assert default_recipe(
        OmegaConf.create({"model": {"_component_": "modeling.gemma.gemma_2b"}})
    ) == ("full_finetune")
    assert default_recipe({"recipe": "lora_finetune_distributed", "model": {}}) == "lora_finetune"
    with pytest.raises(ConfigError, match="no model._component_"):
        default_recipe({"output_dir": "/x"})


# --- validate --------------------------------------------------------------------------


def test_validate_reports_argument_typo_with_key_and_suggestion():
    cfg = load_config("llama3/8B_lora", ["model.lora_rnk=16"])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value) == (
        "model.lora_rnk: lora_llama3_8b: unexpected argument 'lora_rnk'. Did you mean 'lora_rank'?"
    )


def test_validate_reports_component_typo():
    cfg = load_config("llama3/8B_lora", ["model._component_=modeling.llama3.lora_llama3_8bb"])
    with pytest.raises(
        ConfigError, match=r"^model._component_: .*Did you mean 'lora_llama3_8b'\?$"
    ):
        validate_config(cfg)


def test_validate_collects_every_problem():
    cfg = load_config(
        "llama3/8B_lora",
        ["~model.lora_attn_modules", "optimizer.lrr=1", "dtype=fp16", "batch_size=0", "~tokenizer"],
    )
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    lines = str(err.value).splitlines()
    assert lines[0] == "5 problems:"
    text = str(err.value)
    assert "model: lora_llama3_8b: missing required argument 'lora_attn_modules'" in text
    assert "optimizer.lrr: AdamW: unexpected argument 'lrr'. Did you mean 'lr'?" in text
    assert "dtype: 'fp16' is not one of bf16, fp32" in text
    assert "batch_size: must be an integer >= 1, got 0" in text
    assert "tokenizer: missing" in text


def test_validate_accounts_for_recipe_arguments():
    # tokenizer to the dataset, params to the optimizer, optimizer + steps to the scheduler
    cfg = load_config(
        {
            "output_dir": "/x",
            "model": {"_component_": "modeling.llama3.llama3_8b"},
            "tokenizer": {"_component_": "modeling.llama3.llama3_tokenizer", "path": "/t"},
            "checkpointer": {"_component_": f"{__name__}.pair", "first": 1},
            "dataset": {"_component_": f"{__name__}.pair", "scale": 2},
            "optimizer": {"_component_": "torch.optim.SGD", "lr": 0.1},
            "lr_scheduler": {"_component_": f"{__name__}.schedule", "num_warmup_steps": 2},
        }
    )
    assert validate_config(cfg) == []
    cfg.lr_scheduler = {"_component_": "torch.optim.lr_scheduler.StepLR", "step_size": 2}
    # StepLR takes no num_training_steps, which the recipe passes
    with pytest.raises(
        ConfigError, match="lr_scheduler: StepLR: unexpected argument 'num_training_steps'"
    ):
        validate_config(cfg)


def test_validate_reports_mandatory_values_left_unset():
    cfg = load_config("demo", ["batch_size=???"])
    with pytest.raises(ConfigError, match="^batch_size: Missing mandatory value"):
        validate_config(cfg)


def test_validate_checks_nested_components():
    cfg = load_config("llama3/8B_lora", ["+dataset.extra={_component_: torch.optim.SGDD}"])
    with pytest.raises(ConfigError, match=r"dataset.extra._component_: .*Did you mean 'SGD'"):
        validate_config(cfg)


def test_torchtune_style_config_resolves_and_validates(tmp_path):
    pytest.importorskip("modeling.checkpointing")
    pytest.importorskip("orchestrator.datasets")
    pytest.importorskip("orchestrator.training.loss")
    pytest.importorskip("orchestrator.training.lr_schedulers")
    pytest.importorskip("orchestrator.training.metric_logger")
    path = tmp_path / "torchtune_8B_lora.yaml"
    path.write_text(
        """
output_dir: /tmp/torchtune/llama3_8B/lora
model:
  _component_: torchtune.models.llama3.lora_llama3_8b
  lora_attn_modules: ['q_proj', 'v_proj', 'output_proj']
  apply_lora_to_mlp: True
  lora_rank: 8
  lora_alpha: 16
tokenizer:
  _component_: torchtune.models.llama3.llama3_tokenizer
  path: /tmp/Meta-Llama-3-8B-Instruct/original/tokenizer.model
  max_seq_len: null
checkpointer:
  _component_: torchtune.training.FullModelHFCheckpointer
  checkpoint_dir: /tmp/Meta-Llama-3-8B-Instruct/
  checkpoint_files: [model-00001-of-00004.safetensors, model-00002-of-00004.safetensors]
  recipe_checkpoint: null
  output_dir: ${output_dir}
  model_type: LLAMA3
resume_from_checkpoint: False
dataset:
  _component_: torchtune.datasets.alpaca_cleaned_dataset
  packed: False
seed: null
shuffle: True
batch_size: 2
optimizer:
  _component_: torch.optim.AdamW
  fused: True
  weight_decay: 0.01
  lr: 3e-4
lr_scheduler:
  _component_: torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup
  num_warmup_steps: 100
loss:
  _component_: torchtune.modules.loss.CEWithChunkedOutputLoss
epochs: 1
max_steps_per_epoch: null
gradient_accumulation_steps: 8
metric_logger:
  _component_: torchtune.training.metric_logging.DiskLogger
  log_dir: ${output_dir}/logs
device: cuda
dtype: bf16
enable_activation_checkpointing: False
"""
    )
    cfg = load_config(path)
    assert validate_config(cfg) == []
    assert default_recipe(cfg) == "lora_finetune"
    assert resolve_component(cfg.checkpointer._component_).__name__ == "FullModelHFCheckpointer"
