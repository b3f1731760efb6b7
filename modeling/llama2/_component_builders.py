"""Generic Llama 2: multi-head attention (GQA at 70B), SwiGLU, RMSNorm, RoPE base 10000."""

from modeling.builders import family_builders, llama_intermediate_dim

llama2, lora_llama2 = family_builders(
    "llama2",
    "Llama 2",
    rope_base=10_000.0,
    norm_eps=1e-5,
    default_intermediate_dim=llama_intermediate_dim,
)
