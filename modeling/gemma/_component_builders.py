"""Generic Gemma builders: tanh-GELU gated MLP, ``1 + weight`` norms, tied output.

Embeddings are scaled by sqrt(embed_dim) and the output projection is the embedding.
Pass ``head_dim``: Gemma's is not ``embed_dim // num_heads``.
"""

from modeling.builders import family_builders

gemma, lora_gemma = family_builders(
    "gemma",
    "Gemma",
    rope_base=10_000.0,
    norm_eps=1e-6,
    activation="gelu_tanh",
    gemma_style=True,
)
