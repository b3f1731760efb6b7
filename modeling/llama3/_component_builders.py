"""Generic Llama 3: GQA, SwiGLU, RMSNorm, RoPE with base 500000 (Llama 3.1 scaling optional)."""

from modeling.builders import family_builders, llama_intermediate_dim

llama3, lora_llama3 = family_builders(
    "llama3",
    "Llama 3",
    rope_base=500_000.0,
    norm_eps=1e-5,
    default_intermediate_dim=lambda dim: llama_intermediate_dim(dim, 1024, ffn_dim_multiplier=1.3),
)
