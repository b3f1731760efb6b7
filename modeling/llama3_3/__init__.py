"""Llama 3.3: sized and tiny builders (Llama 3.1's architecture, so its generic builders).

The tokenizer is Llama 3's (``modeling.llama3.llama3_tokenizer``), as in torchtune.
"""

from modeling.llama3_3._model_builders import (
    llama3_3_70b,
    llama3_3_tiny,
    lora_llama3_3_70b,
    lora_llama3_3_tiny,
    qlora_llama3_3_70b,
    qlora_llama3_3_tiny,
)

__all__ = [
    "llama3_3_70b",
    "llama3_3_tiny",
    "lora_llama3_3_70b",
    "lora_llama3_3_tiny",
    "qlora_llama3_3_70b",
    "qlora_llama3_3_tiny",
]
