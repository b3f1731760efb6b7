"""Qwen 2.5 at its published sizes, and a tiny size for tests and benchmarks.

Each size is the Instruct model's ``config.json`` (32768-token context, RMSNorm eps 1e-6);
the base and Instruct models share every weight shape, so these builders load either.
torchtune's ``_base``/``_instruct`` names, whose context and eps follow each model's own
config, are in :mod:`modeling.qwen2_5._base_instruct_builders`. The 0.5B, 1.5B and 3B
models tie the output projection to the token embedding.
"""

from modeling.modules import TransformerDecoder
from modeling.qwen2_5._component_builders import lora_qwen2_5, qwen2_5


def qwen2_5_0_5b() -> TransformerDecoder:
    """Qwen 2.5 0.5B (0.49B parameters)."""
    return qwen2_5(
        vocab_size=151_936,
        num_layers=24,
        num_heads=14,
        num_kv_heads=2,
        embed_dim=896,
        intermediate_dim=4864,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
    )


def lora_qwen2_5_0_5b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 0.5B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=151_936,
        num_layers=24,
        num_heads=14,
        num_kv_heads=2,
        embed_dim=896,
        intermediate_dim=4864,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_0_5b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 0.5B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_0_5b` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_0_5b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_1_5b() -> TransformerDecoder:
    """Qwen 2.5 1.5B (1.54B parameters)."""
    return qwen2_5(
        vocab_size=151_936,
        num_layers=28,
        num_heads=12,
        num_kv_heads=2,
        embed_dim=1536,
        intermediate_dim=8960,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
    )


def lora_qwen2_5_1_5b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 1.5B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=151_936,
        num_layers=28,
        num_heads=12,
        num_kv_heads=2,
        embed_dim=1536,
        intermediate_dim=8960,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_1_5b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 1.5B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_1_5b` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_1_5b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_3b() -> TransformerDecoder:
    """Qwen 2.5 3B (3.09B parameters)."""
    return qwen2_5(
        vocab_size=151_936,
        num_layers=36,
        num_heads=16,
        num_kv_heads=2,
        embed_dim=2048,
        intermediate_dim=11_008,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
    )


def lora_qwen2_5_3b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 3B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=151_936,
        num_layers=36,
        num_heads=16,
        num_kv_heads=2,
        embed_dim=2048,
        intermediate_dim=11_008,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_3b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 3B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_3b` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_3b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_7b() -> TransformerDecoder:
    """Qwen 2.5 7B (7.62B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=28,
        num_heads=28,
        num_kv_heads=4,
        embed_dim=3584,
        intermediate_dim=18_944,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 7B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=152_064,
        num_layers=28,
        num_heads=28,
        num_kv_heads=4,
        embed_dim=3584,
        intermediate_dim=18_944,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_7b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 7B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_7b` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_7b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_14b() -> TransformerDecoder:
    """Qwen 2.5 14B (14.77B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=48,
        num_heads=40,
        num_kv_heads=8,
        embed_dim=5120,
        intermediate_dim=13_824,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_14b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 14B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=152_064,
        num_layers=48,
        num_heads=40,
        num_kv_heads=8,
        embed_dim=5120,
        intermediate_dim=13_824,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_14b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 14B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_14b` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_14b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_32b() -> TransformerDecoder:
    """Qwen 2.5 32B (32.76B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=64,
        num_heads=40,
        num_kv_heads=8,
        embed_dim=5120,
        intermediate_dim=27_648,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_32b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 32B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=152_064,
        num_layers=64,
        num_heads=40,
        num_kv_heads=8,
        embed_dim=5120,
        intermediate_dim=27_648,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_32b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 32B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_32b` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_32b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_72b() -> TransformerDecoder:
    """Qwen 2.5 72B (72.71B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=29_568,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_72b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 72B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=152_064,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=29_568,
        max_seq_len=32_768,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_72b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen 2.5 72B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_72b` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_72b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_tiny() -> TransformerDecoder:
    """A 2-layer Qwen 2.5 (0.11M parameters) for tests and benchmarks.

    Grouped-query attention with q/k/v biases and an output tied to the embedding,
    like 0.5B; 512 tokens hold small test tokenizers.
    """
    return qwen2_5(
        vocab_size=512,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        embed_dim=64,
        intermediate_dim=128,
        max_seq_len=256,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
    )


def lora_qwen2_5_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Qwen 2.5 with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
    return lora_qwen2_5(
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
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Qwen 2.5 with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_tiny` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
