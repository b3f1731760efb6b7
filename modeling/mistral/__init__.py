"""Mistral: generic, sized and tiny builders, and the tokenizer."""

from modeling.mistral._component_builders import lora_mistral, mistral
from modeling.mistral._model_builders import (
    lora_mistral_7b,
    lora_mistral_tiny,
    mistral_7b,
    mistral_tiny,
    qlora_mistral_7b,
    qlora_mistral_tiny,
)
from modeling.mistral._tokenizer import mistral_tokenizer

__all__ = [
    "lora_mistral",
    "lora_mistral_7b",
    "lora_mistral_tiny",
    "mistral",
    "mistral_7b",
    "mistral_tiny",
    "mistral_tokenizer",
    "qlora_mistral_7b",
    "qlora_mistral_tiny",
]
