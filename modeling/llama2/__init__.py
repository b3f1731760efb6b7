"""Llama 2: generic, sized and tiny builders, and the tokenizer."""

from modeling.llama2._component_builders import llama2, lora_llama2
from modeling.llama2._model_builders import (
    llama2_7b,
    llama2_13b,
    llama2_70b,
    llama2_tiny,
    lora_llama2_7b,
    lora_llama2_13b,
    lora_llama2_70b,
    lora_llama2_tiny,
    qlora_llama2_7b,
    qlora_llama2_13b,
    qlora_llama2_70b,
    qlora_llama2_tiny,
)
from modeling.llama2._tokenizer import llama2_tokenizer

__all__ = [
    "llama2",
    "llama2_13b",
    "llama2_70b",
    "llama2_7b",
    "llama2_tiny",
    "llama2_tokenizer",
    "lora_llama2",
    "lora_llama2_13b",
    "lora_llama2_70b",
    "lora_llama2_7b",
    "lora_llama2_tiny",
    "qlora_llama2_13b",
    "qlora_llama2_70b",
    "qlora_llama2_7b",
    "qlora_llama2_tiny",
]
