"""Gemma: generic, sized and tiny builders, and the tokenizer."""

from modeling.gemma._component_builders import gemma, lora_gemma
from modeling.gemma._model_builders import (
    gemma_2b,
    gemma_7b,
    gemma_tiny,
    lora_gemma_2b,
    lora_gemma_7b,
    lora_gemma_tiny,
    qlora_gemma_2b,
    qlora_gemma_7b,
    qlora_gemma_tiny,
)
from modeling.gemma._tokenizer import gemma_tokenizer

__all__ = [
    "gemma",
    "gemma_2b",
    "gemma_7b",
    "gemma_tiny",
    "gemma_tokenizer",
    "lora_gemma",
    "lora_gemma_2b",
    "lora_gemma_7b",
    "lora_gemma_tiny",
    "qlora_gemma_2b",
    "qlora_gemma_7b",
    "qlora_gemma_tiny",
]
