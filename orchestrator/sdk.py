"""The Python SDK: ``orchestrator.finetune(...)`` does what ``tune run`` does."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from modeling.checkpointing import ADAPTER_DIR, MERGED_DIR
from modeling.checkpointing.output_rule import check_output_directory
from modeling.storage import is_remote, join
from orchestrator.config import (
    ConfigError,
    config_name,
    default_recipe,
    load_config,
    resolve_recipe,
    validate_config,
)
from orchestrator.launcher import FinetuneResult, LaunchOptions, launch
from orchestrator.preflight import check_run_inputs, check_settings


def prepare(
    config: str | Path | dict,
    overrides: list[str] | None = None,
    recipe: str | None = None,
    *,
    local: bool = True,
) -> tuple[DictConfig, str]:
    """Load, check and ready a config: resolved config and recipe, demo assets made.

    Everything that can be checked before starting Ray is checked here, so mistakes fail
    in seconds: unknown recipe or keys, a recipe that does not fit the model, and (for
    inputs the driver can read) the checkpoint, tokenizer and data against the model
    (:mod:`orchestrator.preflight`) and the output directories (never over an input).

    Raises:
        ConfigError: Naming the key or value at fault.
        FileNotFoundError: For a missing checkpoint or tokenizer.
    """
    cfg = load_config(config, overrides)
    implied = default_recipe(cfg)
    chosen = resolve_recipe(recipe) if recipe else implied
    if chosen != implied:
        component = cfg.model.get("_component_")
        raise ConfigError(
            f"recipe {chosen!r} does not fit model {component!r}, which implies {implied!r}; "
            f"run {implied!r} or choose a {'lora_' if chosen == 'lora_finetune' else 'non-lora'}"
            f" model builder"
        )
    validate_config(cfg)
    check_settings(cfg)  # the sharding layout and the optimizer, local or remote
    if local:
        if cfg.get("demo_assets"):
            from orchestrator.demo_assets import ensure_demo_assets

            ensure_demo_assets(
                cfg.demo_assets, OmegaConf.to_container(cfg.model, resolve=True), cfg.dataset.source
            )
        check_run_inputs(cfg)  # checkpoint, tokenizer and data against the model, in seconds
        for name in (ADAPTER_DIR, MERGED_DIR):
            check_output_directory(
                join(str(cfg.output_dir), name),
                _run_inputs(cfg),
                option=f"output_dir's {name}/",
                fix="move what is there away",
            )
    return cfg, chosen


def _run_inputs(cfg: DictConfig) -> list[str]:
    """The paths a run reads: checkpoint, tokenizer, and the dataset when it is a path."""
    inputs = [cfg.checkpointer.checkpoint_dir, cfg.tokenizer.get("path")]
    source = cfg.dataset.get("source") if isinstance(cfg.dataset, DictConfig) else None
    if isinstance(source, str) and (is_remote(source) or Path(source).expanduser().exists()):
        inputs.append(source)  # not a Hub dataset id or a format name
    return [str(path) for path in inputs if path]


def finetune(
    config: str | Path | dict[str, Any],
    overrides: list[str] | None = None,
    *,
    recipe: str | None = None,
    num_workers: int | None = None,
    gpus_per_worker: float | None = None,
    address: str | None = None,
    storage: str | None = None,
) -> FinetuneResult:
    """Fine-tune on Ray Train and return the run's outputs.

    Args:
        config: A built-in config name (``"llama3/8B_lora"``), a YAML path, or a dict.
        overrides: ``key=value`` / ``~key`` strings, as on the command line.
        recipe: ``lora_finetune`` or ``full_finetune`` (or torchtune's names); by default
            the one the config names or its model implies.
        num_workers: Ray Train workers; default the config's, else sized to the cluster.
        gpus_per_worker: GPUs per worker; default the config's ``gpus_per_worker``.
        address: An existing Ray cluster (``ray://...``, ``auto``); default a local one.
        storage: Where Ray Train keeps checkpoints (path or URI); default
            ``<output_dir>/ray``.

    Returns:
        The :class:`FinetuneResult` (paths and per-step metrics).
    """
    cfg, _ = prepare(config, overrides, recipe, local=address is None)
    options = LaunchOptions(
        num_workers=num_workers, gpus_per_worker=gpus_per_worker, address=address, storage=storage
    )
    return launch(cfg, options, config_name=config_name(config))
