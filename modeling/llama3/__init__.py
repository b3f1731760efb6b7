"""Llama 3: generic, sized and tiny builders, and the tokenizer."""

from modeling.llama3._component_builders import llama3, lora_llama3
from modeling.llama3._model_builders import (
    llama3_8b,
    llama3_70b,
    llama3_tiny,
    lora_llama3_8b,
    lora_llama3_70b,
    lora_llama3_tiny,
    qlora_llama3_8b,
    qlora_llama3_70b,
    qlora_llama3_tiny,
)
from modeling.llama3._tokenizer import NUM_SPECIAL_TOKENS, llama3_tokenizer

__all__ = [
    "NUM_SPECIAL_TOKENS",
    "llama3",
    "llama3_70b",
    "llama3_8b",
    "llama3_tiny",
    "llama3_tokenizer",
    "lora_llama3",
    "lora_llama3_70b",
    "lora_llama3_8b",
    "lora_llama3_tiny",
    "qlora_llama3_70b",
    "qlora_llama3_8b",
    "qlora_llama3_tiny",
]
