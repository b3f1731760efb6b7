"""Every shipped config: present, loadable, well-formed, resolvable, and packaged."""

import fnmatch
import importlib.util
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from orchestrator.config import (
    builtin_config_names,
    builtin_config_path,
    default_recipe,
    instantiate,
    is_component,
    load_config,
    resolve_component,
    validate_config,
)
from orchestrator.config.components import check_call

EXPECTED = [
    "demo",
    "gemma/2B_full",
    "gemma/2B_lora",
    "gemma/2B_qlora",
    "llama2/7B_lora",
    "llama2/7B_qlora",
    "llama2/13B_lora",
    "llama2/70B_lora",
    "llama3/8B_full",
    "llama3/8B_lora",
    "llama3/8B_qlora",
    "llama3/70B_lora",
    "llama3_1/8B_full",
    "llama3_1/8B_lora",
    "llama3_1/8B_qlora",
    "llama3_1/70B_lora",
    "llama3_2/1B_full",
    "llama3_2/1B_lora",
    "llama3_2/3B_lora",
    "llama3_3/70B_lora",
    "mistral/7B_full",
    "mistral/7B_lora",
    "mistral/7B_qlora",
    "phi3/mini_full",
    "phi3/mini_lora",
    "phi3/mini_qlora",
    "qwen2_5/0.5B_full",
    "qwen2_5/0.5B_lora",
    "qwen2_5/1.5B_lora",
    "qwen2_5/3B_lora",
    "qwen2_5/7B_full",
    "qwen2_5/7B_lora",
    "qwen2_5/7B_qlora",
    "qwen2_5/14B_lora",
    "qwen2_5/32B_lora",
    "qwen2_5/72B_lora",
]
# The keys the recipe and launcher read; every shipped config sets exactly these.
RUN_KEYS = {
    "output_dir", "model", "tokenizer", "checkpointer", "dataset", "seed", "shuffle",
    "batch_size", "epochs", "max_steps_per_epoch", "gradient_accumulation_steps",
    "clip_grad_norm", "optimizer", "lr_scheduler", "loss", "enable_activation_checkpointing",
    "compile", "fsdp_cpu_offload", "sharding", "dtype", "log_every_n_steps",
    "save_every_n_steps", "max_failures",
    "num_workers", "gpus_per_worker", "run_name", "storage",
}  # fmt: skip
REPO = Path(__file__).resolve().parents[2]


def components(cfg) -> dict[str, str]:
    """Every ``_component_`` path in ``cfg`` by key."""
    found = {}

    def visit(node, key):
        if isinstance(node, dict):
            if "_component_" in node:
                found[key] = node["_component_"]
            for k, v in node.items():
                visit(v, f"{key}.{k}" if key else k)

    visit(OmegaConf.to_container(cfg, resolve=False), "")
    return found


def test_every_expected_builtin_is_shipped():
    assert builtin_config_names() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_builtin_loads_with_the_run_keys(name):
    cfg = load_config(name)
    expected = RUN_KEYS | ({"demo_assets"} if name == "demo" else set())
    assert set(cfg.keys()) == expected
    for key in (
        "model",
        "tokenizer",
        "checkpointer",
        "dataset",
        "optimizer",
        "lr_scheduler",
        "loss",
    ):
        assert is_component(cfg[key]), key
    assert cfg.checkpointer.output_dir == cfg.output_dir
    assert OmegaConf.to_container(cfg.checkpointer, resolve=False)["output_dir"] == "${output_dir}"
    assert cfg.dtype in ("bf16", "fp32")
    assert cfg.dataset.packed is False
    assert cfg.optimizer._component_ == "torch.optim.AdamW"
    assert cfg.loss.num_output_chunks == 8
    assert cfg.lr_scheduler._component_.endswith("get_cosine_schedule_with_warmup")
    assert cfg.run_name is None and cfg.storage is None


@pytest.mark.parametrize("name", EXPECTED)
def test_builtin_header_says_how_to_run_it(name):
    text = builtin_config_path(name).read_text()
    assert text.startswith("# ")
    recipe = default_recipe(load_config(name))
    assert f"tune run {recipe} --config {name}" in text
    if name != "demo":
        assert "tune download " in text
        checkpoint_dir = load_config(name).checkpointer.checkpoint_dir
        assert f"--output-dir {checkpoint_dir}" in text


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "demo"])
def test_model_configs_match_their_name(name):
    family, variant = name.split("/")
    size, method = variant.split("_")
    cfg = load_config(name)
    builder = cfg.model._component_
    assert builder.startswith(f"modeling.{family}.")
    prefix = {"full": "", "lora": "lora_", "qlora": "qlora_"}[method]
    assert builder == f"modeling.{family}.{prefix}{family}_{size.lower().replace('.', '_')}"
    assert default_recipe(cfg) == ("full_finetune" if method == "full" else "lora_finetune")
    assert cfg.checkpointer._component_ == "modeling.checkpointing.FullModelHFCheckpointer"
    assert cfg.checkpointer.checkpoint_dir.startswith("/tmp/")
    assert cfg.tokenizer.path.startswith(cfg.checkpointer.checkpoint_dir + "/")
    assert cfg.dataset._component_ == "orchestrator.datasets.alpaca_cleaned_dataset"
    assert cfg.gpus_per_worker == 1 and cfg.num_workers is None and cfg.dtype == "bf16"
    if method != "full":
        assert set(cfg.model.lora_attn_modules) <= {"q_proj", "k_proj", "v_proj", "output_proj"}
        assert cfg.model.lora_rank > 0


def module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize("name", EXPECTED)
def test_builtin_component_paths_resolve(name):
    """``modeling.*`` and ``torch.*`` components are imported now (model and tokenizer
    arguments bound too); the others are imported once their module exists."""
    cfg = load_config(name)
    args = OmegaConf.to_container(cfg, resolve=True)
    resolved = 0
    for key, path in components(cfg).items():
        if not path.startswith(("modeling.", "torch.")) and not module_exists(
            path.rsplit(".", 1)[0]
        ):
            continue  # written by another part of the project; the full test covers it
        fn = resolve_component(path)
        resolved += 1
        if key in ("model", "tokenizer"):
            node = {k: v for k, v in args[key].items() if k != "_component_"}
            assert check_call(fn, (), node) == [], (key, path)
    assert resolved >= 3  # model, tokenizer, optimizer at least


def test_validate_all_shipped_configs():
    """Full ``tune validate`` of every shipped config, once all component modules exist."""
    for module in (
        "modeling.checkpointing",
        "orchestrator.datasets",
        "orchestrator.training.loss",
        "orchestrator.training.lr_schedulers",
    ):
        pytest.importorskip(module)
    failures = {}
    for name in EXPECTED:
        try:
            notes = validate_config(load_config(name))
        except ValueError as err:
            failures[name] = str(err)
        else:
            assert notes == [], name
    assert failures == {}


def test_demo_config_values():
    cfg = load_config("demo")
    assert cfg.output_dir == "/tmp/tunefleet/demo"
    assert cfg.demo_assets == "/tmp/tunefleet/demo-assets"
    assert cfg.checkpointer.checkpoint_dir == "/tmp/tunefleet/demo-assets/model"
    assert cfg.tokenizer.path == "/tmp/tunefleet/demo-assets/tokenizer.model"
    assert cfg.model._component_ == "modeling.llama3.lora_llama3_tiny"
    assert cfg.dataset._component_ == "orchestrator.datasets.instruct_dataset"
    assert cfg.dataset.source.endswith("orchestrator/data/demo_instructions.json")
    assert Path(cfg.dataset.source).is_absolute()
    assert (cfg.num_workers, cfg.gpus_per_worker, cfg.batch_size, cfg.epochs) == (2, 0, 4, 15)
    assert (cfg.max_steps_per_epoch, cfg.save_every_n_steps, cfg.dtype) == (None, 50, "fp32")
    assert cfg.optimizer.lr == pytest.approx(1e-2)
    assert cfg.dataset.train_on_input is False
    assert cfg.lr_scheduler.num_warmup_steps == 3
    assert default_recipe(cfg) == "lora_finetune"


def test_demo_model_builds_at_its_tiny_size():
    with torch.device("meta"):
        model = instantiate(load_config("demo").model)
    assert model.tok_embeddings.weight.shape == (768, 128)
    assert any(n.endswith("lora_a.weight") for n, _ in model.named_parameters())


SEED_YAML = """
tokenizer:
    _component_: torchtune.models.llama3.llama3_tokenizer
    path: /tmp/Meta-Llama-3-8B-Instruct/original/tokenizer.model

checkpointer:
    _component_: torchtune.utils.FullModelMetaCheckpointer
    checkpoint_dir: /tmp/Meta-Llama-3-8B-Instruct/original/
    checkpoint_files: [
        consolidated.00.pth
    ]
    recipe_checkpoint: null
    output_dir: /tmp/Meta-Llama-3-8B-Instruct/
    model_type: LLAMA3

model:
    _component_: torchtune.models.llama3.llama3_8b
"""


@pytest.mark.parametrize("rename", [False, True], ids=["torchtune_paths", "modeling_paths"])
def test_seed_docs_yaml_example_resolves_and_binds(tmp_path, rename):
    """The YAML of the model docs we start from, as written and with torchtune. -> modeling."""
    pytest.importorskip("modeling.checkpointing")
    text = SEED_YAML
    if rename:
        text = text.replace("torchtune.utils", "modeling.checkpointing")
        text = text.replace("torchtune.", "modeling.")
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    cfg = OmegaConf.to_container(load_config(path), resolve=True)
    for key in ("tokenizer", "checkpointer", "model"):
        node = dict(cfg[key])
        fn = resolve_component(node.pop("_component_"))
        assert check_call(fn, (), node) == [], key


def test_pyproject_ships_every_config_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["orchestrator"]
    package = REPO / "orchestrator"
    shipped = [p.relative_to(package).as_posix() for p in (package / "configs").rglob("*.yaml")]
    assert len(shipped) == len(EXPECTED)
    for relative in shipped:
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
    assert any(fnmatch.fnmatch("data/demo_instructions.json", p) for p in patterns)
