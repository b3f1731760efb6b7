"""Parameter-efficient fine-tuning: LoRA/DoRA layers, NF4 bases, adapter utilities."""

from modeling.peft.adapters import (
    ADAPTER_SUFFIXES,
    get_adapter_params,
    get_merged_state_dict,
    is_adapter_key,
    merge_state_dict,
    set_trainable_params,
)
from modeling.peft.lora import FrozenNF4Linear, LoRALinear
from modeling.peft.nf4 import NF4Weight

__all__ = [
    "ADAPTER_SUFFIXES",
    "FrozenNF4Linear",
    "LoRALinear",
    "NF4Weight",
    "get_adapter_params",
    "get_merged_state_dict",
    "is_adapter_key",
    "merge_state_dict",
    "set_trainable_params",
]
