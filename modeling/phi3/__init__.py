"""Phi-3: generic, sized and tiny builders, and the tokenizer."""

from modeling.phi3._component_builders import lora_phi3, phi3
from modeling.phi3._model_builders import (
    lora_phi3_mini,
    lora_phi3_tiny,
    phi3_mini,
    phi3_tiny,
    qlora_phi3_mini,
    qlora_phi3_tiny,
)
from modeling.phi3._tokenizer import phi3_mini_tokenizer

__all__ = [
    "lora_phi3",
    "lora_phi3_mini",
    "lora_phi3_tiny",
    "phi3",
    "phi3_mini",
    "phi3_mini_tokenizer",
    "phi3_tiny",
    "qlora_phi3_mini",
    "qlora_phi3_tiny",
]
