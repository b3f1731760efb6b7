"""Generic Mistral: GQA, SwiGLU, RMSNorm, RoPE base 10000.

Sliding-window attention is not applied: it only changes sequences past 4096 tokens.
"""

from modeling.builders import family_builders

mistral, lora_mistral = family_builders(
    "mistral",
    "Mistral",
    rope_base=10_000.0,
    norm_eps=1e-5,
)
