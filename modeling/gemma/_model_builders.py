"""Gemma at its published sizes, and a tiny size for tests and benchmarks."""

from modeling.gemma._component_builders import gemma, lora_gemma
from modeling.modules import TransformerDecoder


def gemma_2b() -> TransformerDecoder:
    """Gemma 2B (2.51B parameters)."""
    return gemma(
        vocab_size=256_000,
        num_layers=18,
        num_heads=8,
        num_kv_heads=1,
        embed_dim=2048,
        head_dim=256,
        intermediate_dim=16_384,
        max_seq_len=8192,
        norm_eps=1e-6,
        rope_base=10_000.0,
    )


def lora_gemma_2b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Gemma 2B with LoRA; the arguments are :func:`lora_gemma`'s."""
    return lora_gemma(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=256_000,
        num_layers=18,
        num_heads=8,
        num_kv_heads=1,
        embed_dim=2048,
        head_dim=256,
        intermediate_dim=16_384,
        max_seq_len=8192,
        norm_eps=1e-6,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_gemma_2b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Gemma 2B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_gemma_2b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_gemma_2b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def gemma_7b() -> TransformerDecoder:
    """Gemma 7B (8.54B parameters)."""
    return gemma(
        vocab_size=256_000,
        num_layers=28,
        num_heads=16,
        num_kv_heads=16,
        embed_dim=3072,
        head_dim=256,
        intermediate_dim=24_576,
        max_seq_len=8192,
        norm_eps=1e-6,
        rope_base=10_000.0,
    )


def lora_gemma_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Gemma 7B with LoRA; the arguments are :func:`lora_gemma`'s."""
    return lora_gemma(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=256_000,
        num_layers=28,
        num_heads=16,
        num_kv_heads=16,
        embed_dim=3072,
        head_dim=256,
        intermediate_dim=24_576,
        max_seq_len=8192,
        norm_eps=1e-6,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_gemma_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Gemma 7B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_gemma_7b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_gemma_7b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def gemma_tiny() -> TransformerDecoder:
    """A 2-layer Gemma (0.12M parameters) for tests and benchmarks.

    One key/value head like 2B, and like 7B a ``head_dim`` (32) other than
    ``embed_dim // num_heads`` (16); 512 tokens hold small test tokenizers.
    """
    return gemma(
        vocab_size=512,
        num_layers=2,
        num_heads=4,
        num_kv_heads=1,
        embed_dim=64,
        head_dim=32,
        intermediate_dim=128,
        max_seq_len=256,
        norm_eps=1e-6,
        rope_base=10_000.0,
    )


def lora_gemma_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Gemma with LoRA; the arguments are :func:`lora_gemma`'s."""
    return lora_gemma(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=512,
        num_layers=2,
        num_heads=4,
        num_kv_heads=1,
        embed_dim=64,
        head_dim=32,
        intermediate_dim=128,
        max_seq_len=256,
        norm_eps=1e-6,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_gemma_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Gemma with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_gemma_tiny` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_gemma_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
