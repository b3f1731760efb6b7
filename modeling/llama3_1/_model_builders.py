"""Llama 3.1 at its published sizes, and the tiny size tests and benchmarks use.

The sizes are Llama 3's with a 131072-token context, reached by RoPE scaling (factor 8).
"""

from modeling.llama3_1._component_builders import llama3_1, lora_llama3_1
from modeling.modules import TransformerDecoder


def llama3_1_8b() -> TransformerDecoder:
    """Llama 3.1 8B (8.03B parameters)."""
    return llama3_1(
        vocab_size=128_256,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=4096,
        intermediate_dim=14_336,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
    )


def lora_llama3_1_8b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.1 8B with LoRA; the arguments are :func:`lora_llama3_1`'s."""
    return lora_llama3_1(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=128_256,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=4096,
        intermediate_dim=14_336,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama3_1_8b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.1 8B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_1_8b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_1_8b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def llama3_1_70b() -> TransformerDecoder:
    """Llama 3.1 70B (70.6B parameters)."""
    return llama3_1(
        vocab_size=128_256,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=28_672,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
    )


def lora_llama3_1_70b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.1 70B with LoRA; the arguments are :func:`lora_llama3_1`'s."""
    return lora_llama3_1(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=128_256,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=28_672,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama3_1_70b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.1 70B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_1_70b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_1_70b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def llama3_1_405b() -> TransformerDecoder:
    """Llama 3.1 405B (405.9B parameters)."""
    return llama3_1(
        vocab_size=128_256,
        num_layers=126,
        num_heads=128,
        num_kv_heads=8,
        embed_dim=16_384,
        intermediate_dim=53_248,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
    )


def lora_llama3_1_405b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.1 405B with LoRA; the arguments are :func:`lora_llama3_1`'s."""
    return lora_llama3_1(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=128_256,
        num_layers=126,
        num_heads=128,
        num_kv_heads=8,
        embed_dim=16_384,
        intermediate_dim=53_248,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama3_1_405b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.1 405B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_1_405b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_1_405b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def llama3_1_tiny() -> TransformerDecoder:
    """A 2-layer Llama 3.1 (0.49M parameters) for tests and benchmarks.

    Llama 3 tiny's sizes (768 tokens hold a test tokenizer's 512 BPE ranks plus Llama 3's
    256 special tokens) with Llama 3.1's RoPE scaling.
    """
    return llama3_1(
        vocab_size=768,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        embed_dim=128,
        intermediate_dim=256,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
    )


def lora_llama3_1_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Llama 3.1 with LoRA; the arguments are :func:`lora_llama3_1`'s."""
    return lora_llama3_1(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=768,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        embed_dim=128,
        intermediate_dim=256,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=8.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama3_1_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Llama 3.1 with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_1_tiny` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_1_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
