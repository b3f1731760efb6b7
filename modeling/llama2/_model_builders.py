"""Llama 2 at its published sizes."""

from modeling.builders import sized_builders
from modeling.llama2._component_builders import llama2, lora_llama2

_COMMON = dict(vocab_size=32_000, max_seq_len=4096, norm_eps=1e-5, rope_base=10_000.0)
LLAMA2_SIZES = {
    "7b": dict(
        _COMMON,
        num_layers=32,
        num_heads=32,
        num_kv_heads=32,
        embed_dim=4096,
        intermediate_dim=11_008,
    ),
    "13b": dict(
        _COMMON,
        num_layers=40,
        num_heads=40,
        num_kv_heads=40,
        embed_dim=5120,
        intermediate_dim=13_824,
    ),
    "70b": dict(
        _COMMON,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=28_672,
    ),
}

llama2_7b, lora_llama2_7b, qlora_llama2_7b = sized_builders(
    "llama2", "7b", "Llama 2 7B (6.74B parameters)", llama2, lora_llama2, LLAMA2_SIZES["7b"]
)
llama2_13b, lora_llama2_13b, qlora_llama2_13b = sized_builders(
    "llama2", "13b", "Llama 2 13B (13.0B parameters)", llama2, lora_llama2, LLAMA2_SIZES["13b"]
)
llama2_70b, lora_llama2_70b, qlora_llama2_70b = sized_builders(
    "llama2", "70b", "Llama 2 70B (69.0B parameters)", llama2, lora_llama2, LLAMA2_SIZES["70b"]
)
