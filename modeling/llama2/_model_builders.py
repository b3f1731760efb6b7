"""Llama 2 at its published sizes, and a tiny size for tests and benchmarks."""

from modeling.llama2._component_builders import llama2, lora_llama2
from modeling.modules import TransformerDecoder


def llama2_7b() -> TransformerDecoder:
    """Llama 2 7B (6.74B parameters)."""
    return llama2(
        vocab_size=32_000,
        num_layers=32,
        num_heads=32,
        num_kv_heads=32,
        embed_dim=4096,
        intermediate_dim=11_008,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_llama2_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 2 7B with LoRA; the arguments are :func:`lora_llama2`'s."""
    return lora_llama2(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=32_000,
        num_layers=32,
        num_heads=32,
        num_kv_heads=32,
        embed_dim=4096,
        intermediate_dim=11_008,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama2_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 2 7B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama2_7b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama2_7b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def llama2_13b() -> TransformerDecoder:
    """Llama 2 13B (13.0B parameters)."""
    return llama2(
        vocab_size=32_000,
        num_layers=40,
        num_heads=40,
        num_kv_heads=40,
        embed_dim=5120,
        intermediate_dim=13_824,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_llama2_13b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 2 13B with LoRA; the arguments are :func:`lora_llama2`'s."""
    return lora_llama2(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=32_000,
        num_layers=40,
        num_heads=40,
        num_kv_heads=40,
        embed_dim=5120,
        intermediate_dim=13_824,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama2_13b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 2 13B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama2_13b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama2_13b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def llama2_70b() -> TransformerDecoder:
    """Llama 2 70B (69.0B parameters)."""
    return llama2(
        vocab_size=32_000,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=28_672,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_llama2_70b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 2 70B with LoRA; the arguments are :func:`lora_llama2`'s."""
    return lora_llama2(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=32_000,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=28_672,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama2_70b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 2 70B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama2_70b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama2_70b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def llama2_tiny() -> TransformerDecoder:
    """A 2-layer Llama 2 (0.15M parameters) for tests and benchmarks.

    Multi-head attention like 7B; 512 tokens hold small sentencepiece test tokenizers.
    """
    return llama2(
        vocab_size=512,
        num_layers=2,
        num_heads=4,
        num_kv_heads=4,
        embed_dim=64,
        intermediate_dim=128,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_llama2_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Llama 2 with LoRA; the arguments are :func:`lora_llama2`'s."""
    return lora_llama2(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=512,
        num_layers=2,
        num_heads=4,
        num_kv_heads=4,
        embed_dim=64,
        intermediate_dim=128,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama2_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Llama 2 with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama2_tiny` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama2_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
