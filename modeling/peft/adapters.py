"""Adapter bookkeeping: list adapter parameters, freeze the rest, merge into base weights."""

import torch
from torch import nn

from modeling.peft.lora import LoRALinear

# The names adapter parameters end with: LoRA A and B, and DoRA's magnitude.
ADAPTER_SUFFIXES = ("lora_a.weight", "lora_b.weight", "magnitude")


def is_adapter_key(key: str) -> bool:
    """Whether a state-dict key names an adapter parameter (not a base weight)."""
    return key.endswith(ADAPTER_SUFFIXES)


def get_adapter_params(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every adapter parameter of ``model`` by its state-dict name (LoRA A/B, DoRA magnitude)."""
    return {name: param for name, param in model.named_parameters() if is_adapter_key(name)}


def set_trainable_params(model: nn.Module, adapter_params: dict[str, nn.Parameter]) -> None:
    """Make exactly ``adapter_params`` trainable and freeze every other parameter."""
    for name, param in model.named_parameters():
        param.requires_grad_(name in adapter_params)


def get_merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict of the plain (non-LoRA) model equivalent to ``model``.

    Every :class:`LoRALinear` contributes ``W + (alpha / rank) B A`` (DoRA-rescaled when
    enabled) under its ``weight`` key; adapter keys are dropped. The result loads into the
    matching non-LoRA builder with ``strict=True``.
    """
    with torch.no_grad():
        return merge_state_dict(model.state_dict(), model)


def merge_state_dict(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Merge the adapters of a LoRA ``state`` dict, taking ranks and scales from ``model``.

    ``state`` holds full tensors (e.g. gathered from FSDP shards) while ``model`` may be
    sharded: only its :class:`LoRALinear` settings are read.
    """
    merged = {key: value for key, value in state.items() if not is_adapter_key(key)}
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            merged[f"{name}.weight"] = merge_weight(name, module, state[f"{name}.weight"], state)
    return merged


def merge_weight(
    name: str, module: LoRALinear, weight: torch.Tensor, adapters: dict[str, torch.Tensor]
) -> torch.Tensor:
    """``weight`` (the base of the LoRA layer ``name``) with its adapter from ``adapters``.

    ``adapters`` holds full tensors under our names (``{name}.lora_a.weight``, ...; it may
    hold other keys too); ``module`` gives the rank, scale and DoRA setting.
    """
    return module.merge(
        weight,
        adapters[f"{name}.lora_a.weight"],
        adapters[f"{name}.lora_b.weight"],
        adapters.get(f"{name}.magnitude"),
    )
