"""Llama 3.1: generic, sized and tiny builders, and its scaled RoPE.

The tokenizer is Llama 3's (``modeling.llama3.llama3_tokenizer``), as in torchtune.
"""

from modeling.llama3_1._component_builders import llama3_1, lora_llama3_1
from modeling.llama3_1._model_builders import (
    llama3_1_8b,
    llama3_1_70b,
    llama3_1_405b,
    llama3_1_tiny,
    lora_llama3_1_8b,
    lora_llama3_1_70b,
    lora_llama3_1_405b,
    lora_llama3_1_tiny,
    qlora_llama3_1_8b,
    qlora_llama3_1_70b,
    qlora_llama3_1_405b,
    qlora_llama3_1_tiny,
)
from modeling.modules import Llama3ScaledRoPE

__all__ = [
    "Llama3ScaledRoPE",
    "llama3_1",
    "llama3_1_405b",
    "llama3_1_70b",
    "llama3_1_8b",
    "llama3_1_tiny",
    "lora_llama3_1",
    "lora_llama3_1_405b",
    "lora_llama3_1_70b",
    "lora_llama3_1_8b",
    "lora_llama3_1_tiny",
    "qlora_llama3_1_405b",
    "qlora_llama3_1_70b",
    "qlora_llama3_1_8b",
    "qlora_llama3_1_tiny",
]
