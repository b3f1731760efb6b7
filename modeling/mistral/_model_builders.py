"""Mistral at its published size, and a tiny size for tests and benchmarks."""

from modeling.mistral._component_builders import lora_mistral, mistral
from modeling.modules import TransformerDecoder


def mistral_7b() -> TransformerDecoder:
    """Mistral 7B (7.24B parameters)."""
    return mistral(
        vocab_size=32_000,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=4096,
        intermediate_dim=14_336,
        max_seq_len=32_768,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_mistral_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Mistral 7B with LoRA; the arguments are :func:`lora_mistral`'s."""
    return lora_mistral(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=32_000,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=4096,
        intermediate_dim=14_336,
        max_seq_len=32_768,
        norm_eps=1e-5,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_mistral_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Mistral 7B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_mistral_7b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_mistral_7b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def mistral_tiny() -> TransformerDecoder:
    """A 2-layer Mistral (0.14M parameters) for tests and benchmarks.

    Grouped-query attention like 7B; 512 tokens hold small sentencepiece test tokenizers.
    """
    return mistral(
        vocab_size=512,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        embed_dim=64,
        intermediate_dim=128,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_mistral_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Mistral with LoRA; the arguments are :func:`lora_mistral`'s."""
    return lora_mistral(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=512,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
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


def qlora_mistral_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Mistral with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_mistral_tiny` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_mistral_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
