"""torchtune 0.6.1's own configs: every full/LoRA/QLoRA/DoRA one validates unchanged.

The configs come from torchtune's wheel (``recipes/configs/`` inside it), downloaded once
with pip into ``~/.cache/tunefleet/torchtune-wheel`` (``XDG_CACHE_HOME`` respected) and
reused; the tests skip only when the package registry cannot be reached. A representative
set (one LoRA and one full config of each of the first five families) also runs, with its
paths pointed at real tiny files and the model swapped for the family's tiny size.
"""

import math
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from orchestrator.config import load_config, validate_config
from orchestrator.recipes.finetune import finetune
from orchestrator.training.metric_logger import read_metrics
from orchestrator.training.session import LocalSession
from tests.orchestrator.torchtune_run_fixtures import (
    write_alpaca,
    write_hf_checkpoint,
    write_meta_checkpoint,
    write_tokenizer,
)

TORCHTUNE = "torchtune==0.6.1"
WHEEL = "torchtune-0.6.1-py3-none-any.whl"
FAMILIES = (
    "llama2",
    "llama3",
    "llama3_1",
    "llama3_2",
    "llama3_3",
    "mistral",
    "phi3",
    "gemma",
    "qwen2_5",
)
# Full, LoRA, QLoRA and DoRA (QDoRA) configs; not DPO/PPO/QAT/distillation/eval/generation,
# which are other recipes.
FINETUNE = re.compile(r"full|lora|dora")
OTHER_RECIPES = re.compile(r"dpo|ppo|qat|KD|generation|evaluation")
# pip's words for an index it could not reach (as opposed to a package it did not find).
UNREACHABLE = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout|ProxyError|"
    r"SSLError|Could not fetch URL|connection broken",
    re.IGNORECASE,
)


def wheel_cache() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "tunefleet" / "torchtune-wheel"


@pytest.fixture(scope="session")
def torchtune_wheel() -> Path:
    """torchtune 0.6.1's wheel, downloaded once (no dependencies) and kept in the cache."""
    cache = wheel_cache()
    wheel = cache / WHEEL
    if wheel.is_file():
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", TORCHTUNE, "-d", tmp]
        try:
            done = subprocess.run(
                [*command, "--timeout", "30", "--retries", "1"],
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"the package registry did not answer `pip download {TORCHTUNE}` in 600 s")
        output = done.stdout + done.stderr
        if done.returncode != 0:
            reason = UNREACHABLE.search(output)
            if reason:
                pytest.skip(f"the package registry cannot be reached ({reason.group(0)})")
            pytest.fail(f"pip download {TORCHTUNE} failed:\n{output[-3000:]}")
        os.replace(Path(tmp) / WHEEL, wheel)  # whole or not at all
    return wheel


@pytest.fixture(scope="session")
def configs_dir(torchtune_wheel, tmp_path_factory) -> Path:
    """``recipes/configs/`` of the wheel, extracted."""
    target = tmp_path_factory.mktemp("torchtune")
    with zipfile.ZipFile(torchtune_wheel) as wheel:
        members = [n for n in wheel.namelist() if n.startswith("recipes/configs/")]
        wheel.extractall(target, members)
    return target / "recipes" / "configs"


def finetune_configs(configs_dir: Path, family: str) -> list[Path]:
    return sorted(
        path
        for path in (configs_dir / family).glob("*.yaml")
        if FINETUNE.search(path.stem) and not OTHER_RECIPES.search(path.stem)
    )


def test_the_selection_covers_every_finetune_config(configs_dir):
    names = {f"{f}/{p.stem}" for f in FAMILIES for p in finetune_configs(configs_dir, f)}
    assert len(names) == 80, sorted(names)
    assert {"llama3/8B_dora", "llama3/8B_qdora_single_device", "llama2/7B_qlora"} <= names
    assert (
        "llama3_1/8B_lora_dpo" not in names and "llama3_2/8B_to_1B_KD_lora_distributed" not in names
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_every_finetune_config_validates_unchanged(configs_dir, family):
    failures = []
    for path in finetune_configs(configs_dir, family):
        try:
            validate_config(load_config(str(path)))
        except (ValueError, OSError) as err:
            failures.append(f"{family}/{path.name}: {err}")
    assert finetune_configs(configs_dir, family)
    assert not failures, "\n".join(failures)


def test_notes_name_the_torchtune_keys_tunefleet_does_not_use(configs_dir):
    notes = validate_config(load_config(str(configs_dir / "llama3" / "70B_full.yaml")))
    assert notes == [
        "tensor_parallel_plan: not used: Tunefleet shards with FSDP2 (HSDP across nodes) and "
        "applies no tensor parallelism"
    ]
    path = str(configs_dir / "llama3" / "70B_full.yaml")
    with pytest.raises(ValueError, match=r"^tensor_parallel_dim: Tunefleet does not do tensor"):
        validate_config(load_config(path, ["tensor_parallel_dim=8"]))


# --- running them ----------------------------------------------------------------------

RUNS = [
    "llama3/8B_lora_single_device",  # a Meta checkpoint (consolidated.00.pth)
    "llama3/8B_full_single_device",
    "llama2/7B_lora_single_device",
    "llama2/7B_full",
    "mistral/7B_lora_single_device",
    "mistral/7B_full",
    "phi3/mini_lora_single_device",  # LoRA on q/v: exported on the fused qkv_proj
    "phi3/mini_full",
    "gemma/2B_lora_single_device",
    "gemma/2B_full",
]


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny matmuls on a shared 2-core machine are fastest that way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", RUNS)
def test_config_runs_with_only_paths_and_the_tiny_model_overridden(
    configs_dir, name, tmp_path, one_thread
):
    family = name.split("/")[0]
    path = configs_dir / f"{name}.yaml"
    raw = OmegaConf.load(path)
    meta = raw.checkpointer._component_.endswith("FullModelMetaCheckpointer")
    files = (write_meta_checkpoint if meta else write_hf_checkpoint)(family, tmp_path / "base")
    steps = 2
    rows = raw.batch_size * raw.gradient_accumulation_steps * steps
    lora = raw.model._component_.rsplit(".", 1)[-1].startswith(("lora_", "qlora_"))
    out = tmp_path / "out"
    cfg = load_config(
        str(path),
        [
            f"output_dir={out}",
            f"checkpointer.checkpoint_dir={tmp_path / 'base'}",
            f"checkpointer.checkpoint_files=[{','.join(files)}]",
            f"tokenizer.path={write_tokenizer(family, tmp_path / 'tokenizer')}",
            f"dataset.source={write_alpaca(tmp_path / 'data' / 'alpaca.json', rows)}",
            f"model._component_=modeling.{family}.{'lora_' if lora else ''}{family}_tiny",
        ],
    )
    validate_config(cfg)
    finetune(cfg, LocalSession(checkpoint_root=tmp_path / "checkpoints"))

    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(math.isfinite(m["loss"]) for m in metrics)
    (log,) = (out / "logs").glob("log_*.txt")  # the config's DiskLogger
    lines = log.read_text().splitlines()
    assert [line.split(" | ")[0] for line in lines] == ["Step 1", "Step 2"]
    assert f"loss:{metrics[0]['loss']} " in lines[0]
    assert OmegaConf.load(out / "torchtune_config.yaml").model._component_.endswith("_tiny")
    assert (out / "merged" / ("consolidated.00.pth" if meta else "config.json")).is_file()
    assert (out / "adapter" / "adapter_config.json").is_file() == lora
