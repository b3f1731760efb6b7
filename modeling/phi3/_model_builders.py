"""Phi-3 at its published size."""

from modeling.builders import sized_builders
from modeling.phi3._component_builders import lora_phi3, phi3

PHI3_SIZES = {
    "mini": dict(
        vocab_size=32_064,
        num_layers=32,
        num_heads=32,
        num_kv_heads=32,
        embed_dim=3072,
        intermediate_dim=8192,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
    ),
}

phi3_mini, lora_phi3_mini, qlora_phi3_mini = sized_builders(
    "phi3", "mini", "Phi-3 mini 4k (3.82B parameters)", phi3, lora_phi3, PHI3_SIZES["mini"]
)
