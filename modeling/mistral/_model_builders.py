"""Mistral at its published size."""

from modeling.builders import sized_builders
from modeling.mistral._component_builders import lora_mistral, mistral

MISTRAL_SIZES = {
    "7b": dict(
        vocab_size=32_000,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=4096,
        intermediate_dim=14_336,
        max_seq_len=32_768,
        norm_eps=1e-5,
        rope_base=10_000.0,
    ),
}

mistral_7b, lora_mistral_7b, qlora_mistral_7b = sized_builders(
    "mistral", "7b", "Mistral 7B (7.24B parameters)", mistral, lora_mistral, MISTRAL_SIZES["7b"]
)
