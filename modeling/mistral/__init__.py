"""Mistral: generic and sized builders."""

from modeling.mistral._component_builders import lora_mistral, mistral
from modeling.mistral._model_builders import (
    lora_mistral_7b,
    mistral_7b,
    qlora_mistral_7b,
)

__all__ = [
    "lora_mistral",
    "lora_mistral_7b",
    "mistral",
    "mistral_7b",
    "qlora_mistral_7b",
]
