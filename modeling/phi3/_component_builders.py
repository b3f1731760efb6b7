"""Generic Phi-3: SwiGLU, RMSNorm, RoPE base 10000.

Hugging Face fuses q/k/v and gate/up; the key map splits them, so the model keeps them
apart like every other family.
"""

from modeling.builders import family_builders

phi3, lora_phi3 = family_builders(
    "phi3",
    "Phi-3",
    rope_base=10_000.0,
    norm_eps=1e-5,
)
