"""Gemma at its published sizes."""

from modeling.builders import sized_builders
from modeling.gemma._component_builders import gemma, lora_gemma

_COMMON = dict(
    vocab_size=256_000, head_dim=256, max_seq_len=8192, norm_eps=1e-6, rope_base=10_000.0
)
GEMMA_SIZES = {
    "2b": dict(
        _COMMON, num_layers=18, num_heads=8, num_kv_heads=1, embed_dim=2048, intermediate_dim=16_384
    ),
    "7b": dict(
        _COMMON,
        num_layers=28,
        num_heads=16,
        num_kv_heads=16,
        embed_dim=3072,
        intermediate_dim=24_576,
    ),
}

gemma_2b, lora_gemma_2b, qlora_gemma_2b = sized_builders(
    "gemma", "2b", "Gemma 2B (2.51B parameters)", gemma, lora_gemma, GEMMA_SIZES["2b"]
)
gemma_7b, lora_gemma_7b, qlora_gemma_7b = sized_builders(
    "gemma", "7b", "Gemma 7B (8.54B parameters)", gemma, lora_gemma, GEMMA_SIZES["7b"]
)
