"""Llama 3.2 (text, 1B and 3B): generic, sized and tiny builders; output tied to the embedding.

The tokenizer is Llama 3's (``modeling.llama3.llama3_tokenizer``), as in torchtune.
"""

from modeling.llama3_2._component_builders import llama3_2, lora_llama3_2
from modeling.llama3_2._model_builders import (
    llama3_2_1b,
    llama3_2_3b,
    llama3_2_tiny,
    lora_llama3_2_1b,
    lora_llama3_2_3b,
    lora_llama3_2_tiny,
    qlora_llama3_2_1b,
    qlora_llama3_2_3b,
    qlora_llama3_2_tiny,
)

__all__ = [
    "llama3_2",
    "llama3_2_1b",
    "llama3_2_3b",
    "llama3_2_tiny",
    "lora_llama3_2",
    "lora_llama3_2_1b",
    "lora_llama3_2_3b",
    "lora_llama3_2_tiny",
    "qlora_llama3_2_1b",
    "qlora_llama3_2_3b",
    "qlora_llama3_2_tiny",
]
