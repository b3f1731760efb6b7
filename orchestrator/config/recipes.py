"""Recipe names: ours, torchtune's, and which recipe a config implies.

There are two recipes, ``full_finetune`` and ``lora_finetune`` (QLoRA is ``lora_finetune``
with a ``qlora_`` model). torchtune's single-device and distributed recipe names are
accepted: on Ray one recipe covers one GPU and many nodes.
"""

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig

from orchestrator.config.errors import ConfigError
from orchestrator.config.suggest import did_you_mean

FULL_FINETUNE = "full_finetune"
LORA_FINETUNE = "lora_finetune"
RECIPES = (FULL_FINETUNE, LORA_FINETUNE)

RECIPE_ALIASES: dict[str, str] = {
    FULL_FINETUNE: FULL_FINETUNE,
    LORA_FINETUNE: LORA_FINETUNE,
    "full_finetune_single_device": FULL_FINETUNE,
    "full_finetune_distributed": FULL_FINETUNE,
    "lora_finetune_single_device": LORA_FINETUNE,
    "lora_finetune_distributed": LORA_FINETUNE,
}

# Model builders whose name starts with one of these train adapters only.
ADAPTER_BUILDER_PREFIXES = ("lora_", "qlora_")


def resolve_recipe(name: str) -> str:
    """Map a recipe name (ours or torchtune's) to ``full_finetune`` or ``lora_finetune``.

    Raises:
        ConfigError: For an unknown name, listing the known names and the closest one.
    """
    stem = name.removesuffix(".py")
    if stem in RECIPE_ALIASES:
        return RECIPE_ALIASES[stem]
    raise ConfigError(
        f"unknown recipe {name!r}.{did_you_mean(stem, RECIPE_ALIASES)} "
        f"Known recipes: {', '.join(RECIPE_ALIASES)}"
    )


def default_recipe(cfg: DictConfig | Mapping[str, Any]) -> str:
    """The recipe a config names (top-level ``recipe`` key) or implies by its model.

    A model whose builder is ``lora_*`` or ``qlora_*`` (``modeling.llama3.lora_llama3_8b``,
    ``torchtune.models.mistral.qlora_mistral_7b``) implies ``lora_finetune``; any other
    model implies ``full_finetune``.

    Raises:
        ConfigError: If the config has no model component and names no recipe.
    """
    if cfg.get("recipe") is not None:
        return resolve_recipe(str(cfg["recipe"]))
    model = cfg.get("model")
    path = model.get("_component_") if isinstance(model, Mapping | DictConfig) else None
    if not isinstance(path, str):
        raise ConfigError(
            "the config has no model._component_, so no recipe can be chosen; "
            "add a model (e.g. _component_: modeling.llama3.lora_llama3_8b)"
        )
    builder = path.rsplit(".", 1)[-1]
    return LORA_FINETUNE if builder.startswith(ADAPTER_BUILDER_PREFIXES) else FULL_FINETUNE
