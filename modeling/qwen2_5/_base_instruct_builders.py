"""torchtune's Qwen 2.5 builders for the base and Instruct models of each size.

The two differ only in ``config.json`` settings that shape no weight: the base models'
rotary tables cover 131072 tokens, the Instruct models' 32768, and the 14B, 32B and 72B
base models use RMSNorm eps 1e-5 where their Instruct models use 1e-6. (0.5B and 3B have
one builder for both, in :mod:`modeling.qwen2_5._model_builders`.)
"""

from modeling.modules import TransformerDecoder
from modeling.qwen2_5._component_builders import lora_qwen2_5, qwen2_5


def qwen2_5_1_5b_base() -> TransformerDecoder:
    """Qwen2.5-1.5B (1.54B parameters)."""
    return qwen2_5(
        vocab_size=151_936,
        num_layers=28,
        num_heads=12,
        num_kv_heads=2,
        embed_dim=1536,
        intermediate_dim=8960,
        max_seq_len=131_072,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
    )


def lora_qwen2_5_1_5b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-1.5B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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
        max_seq_len=131_072,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        tie_word_embeddings=True,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_1_5b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-1.5B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_1_5b_base` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_1_5b_base(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_1_5b_instruct() -> TransformerDecoder:
    """Qwen2.5-1.5B-Instruct (1.54B parameters)."""
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


def lora_qwen2_5_1_5b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-1.5B-Instruct with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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


def qlora_qwen2_5_1_5b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-1.5B-Instruct with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_1_5b_instruct` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_1_5b_instruct(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_7b_base() -> TransformerDecoder:
    """Qwen2.5-7B (7.62B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=28,
        num_heads=28,
        num_kv_heads=4,
        embed_dim=3584,
        intermediate_dim=18_944,
        max_seq_len=131_072,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_7b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-7B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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
        max_seq_len=131_072,
        norm_eps=1e-6,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_7b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-7B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_7b_base` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_7b_base(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_7b_instruct() -> TransformerDecoder:
    """Qwen2.5-7B-Instruct (7.62B parameters)."""
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


def lora_qwen2_5_7b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-7B-Instruct with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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


def qlora_qwen2_5_7b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-7B-Instruct with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_7b_instruct` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_7b_instruct(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_14b_base() -> TransformerDecoder:
    """Qwen2.5-14B (14.77B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=48,
        num_heads=40,
        num_kv_heads=8,
        embed_dim=5120,
        intermediate_dim=13_824,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_14b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-14B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_14b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-14B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_14b_base` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_14b_base(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_14b_instruct() -> TransformerDecoder:
    """Qwen2.5-14B-Instruct (14.77B parameters)."""
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


def lora_qwen2_5_14b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-14B-Instruct with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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


def qlora_qwen2_5_14b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-14B-Instruct with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_14b_instruct` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_14b_instruct(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_32b_base() -> TransformerDecoder:
    """Qwen2.5-32B (32.76B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=64,
        num_heads=40,
        num_kv_heads=8,
        embed_dim=5120,
        intermediate_dim=27_648,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_32b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-32B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_32b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-32B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_32b_base` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_32b_base(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_32b_instruct() -> TransformerDecoder:
    """Qwen2.5-32B-Instruct (32.76B parameters)."""
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


def lora_qwen2_5_32b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-32B-Instruct with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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


def qlora_qwen2_5_32b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-32B-Instruct with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_32b_instruct` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_32b_instruct(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_72b_base() -> TransformerDecoder:
    """Qwen2.5-72B (72.71B parameters)."""
    return qwen2_5(
        vocab_size=152_064,
        num_layers=80,
        num_heads=64,
        num_kv_heads=8,
        embed_dim=8192,
        intermediate_dim=29_568,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=1_000_000.0,
    )


def lora_qwen2_5_72b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-72B with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=1_000_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_qwen2_5_72b_base(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-72B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_72b_base` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_72b_base(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def qwen2_5_72b_instruct() -> TransformerDecoder:
    """Qwen2.5-72B-Instruct (72.71B parameters)."""
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


def lora_qwen2_5_72b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-72B-Instruct with LoRA; the arguments are :func:`lora_qwen2_5`'s."""
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


def qlora_qwen2_5_72b_instruct(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Qwen2.5-72B-Instruct with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_qwen2_5_72b_instruct` with ``quantize_base=True``; the other arguments are the
    same.
    """
    return lora_qwen2_5_72b_instruct(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
