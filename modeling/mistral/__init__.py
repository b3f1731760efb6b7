"""Mistral: generic and sized builders."""

from modeling.mistral._component_builders import lora_mistral, mistral
from modeling.mistral._model_builders import (
    lora_mistral_7b,
    mistral_7b,
    qlora_mistral_7b,
)
from modeling.mistral._tokenizer import mistral_tokenizer

__all__ = [
    "lora_mistral",
    "lora_mistral_7b",
    "mistral",
    "mistral_7b",
    "mistral_tokenizer",
    "qlora_mistral_7b",
]
