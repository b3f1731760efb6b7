"""Llama 3 at its published sizes, and the tiny size tests and the demo use."""

from modeling.builders import sized_builders
from modeling.llama3._component_builders import llama3, lora_llama3

LLAMA3_SIZES = {
    "8b": dict(
        vocab_size=128_256,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=4096,
        intermediate_dim=14_336,
        max_seq_len=8192,
        norm_eps=1e-5,
        rope_base=500_000.0,
    ),
    "70b": dict(
        vocab_size=128_256,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=28_672,
        max_seq_len=8192,
        norm_eps=1e-5,
        rope_base=500_000.0,
    ),
}

llama3_8b, lora_llama3_8b, qlora_llama3_8b = sized_builders(
    "llama3", "8b", "Llama 3 8B (8.03B parameters)", llama3, lora_llama3, LLAMA3_SIZES["8b"]
)
llama3_70b, lora_llama3_70b, qlora_llama3_70b = sized_builders(
    "llama3", "70b", "Llama 3 70B (70.6B parameters)", llama3, lora_llama3, LLAMA3_SIZES["70b"]
)
