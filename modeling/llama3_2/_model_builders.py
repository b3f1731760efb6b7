"""Llama 3.2 (text) at its published sizes, and the tiny size tests and benchmarks use.

The 1B and 3B models tie their output projection to the token embedding and scale RoPE
by 32 for a 131072-token context.
"""

from modeling.llama3_2._component_builders import llama3_2, lora_llama3_2
from modeling.modules import TransformerDecoder


def llama3_2_1b(tie_word_embeddings: bool = True) -> TransformerDecoder:
    """Llama 3.2 1B (1.24B parameters).

    Args:
        tie_word_embeddings: Tie the output projection to the token embedding, as
            Meta's checkpoints do; False gives an untied output.
    """
    return llama3_2(
        vocab_size=128_256,
        num_layers=16,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=2048,
        intermediate_dim=8192,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=32.0,
        tie_word_embeddings=tie_word_embeddings,
    )


def lora_llama3_2_1b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
    tie_word_embeddings: bool = True,
) -> TransformerDecoder:
    """Llama 3.2 1B with LoRA; the arguments are :func:`lora_llama3_2`'s.

    ``tie_word_embeddings`` is :func:`llama3_2_1b`'s (tied by default).
    """
    return lora_llama3_2(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=128_256,
        num_layers=16,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=2048,
        intermediate_dim=8192,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=32.0,
        tie_word_embeddings=tie_word_embeddings,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama3_2_1b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
    tie_word_embeddings: bool = True,
) -> TransformerDecoder:
    """Llama 3.2 1B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_2_1b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_2_1b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
        tie_word_embeddings=tie_word_embeddings,
    )


def llama3_2_3b(tie_word_embeddings: bool = True) -> TransformerDecoder:
    """Llama 3.2 3B (3.21B parameters).

    Args:
        tie_word_embeddings: Tie the output projection to the token embedding, as
            Meta's checkpoints do; False gives an untied output.
    """
    return llama3_2(
        vocab_size=128_256,
        num_layers=28,
        num_heads=24,
        num_kv_heads=8,
        embed_dim=3072,
        intermediate_dim=8192,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=32.0,
        tie_word_embeddings=tie_word_embeddings,
    )


def lora_llama3_2_3b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
    tie_word_embeddings: bool = True,
) -> TransformerDecoder:
    """Llama 3.2 3B with LoRA; the arguments are :func:`lora_llama3_2`'s.

    ``tie_word_embeddings`` is :func:`llama3_2_3b`'s (tied by default).
    """
    return lora_llama3_2(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=128_256,
        num_layers=28,
        num_heads=24,
        num_kv_heads=8,
        embed_dim=3072,
        intermediate_dim=8192,
        max_seq_len=131_072,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=32.0,
        tie_word_embeddings=tie_word_embeddings,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama3_2_3b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
    tie_word_embeddings: bool = True,
) -> TransformerDecoder:
    """Llama 3.2 3B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_2_3b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_2_3b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
        tie_word_embeddings=tie_word_embeddings,
    )


def llama3_2_tiny(tie_word_embeddings: bool = True) -> TransformerDecoder:
    """A 2-layer Llama 3.2 (0.39M parameters) for tests and benchmarks.

    Llama 3 tiny's sizes (768 tokens hold a test tokenizer's 512 BPE ranks plus Llama 3's
    256 special tokens) with Llama 3.2's RoPE scaling and tied output.

    Args:
        tie_word_embeddings: Tie the output projection to the token embedding, as
            Meta's checkpoints do; False gives an untied output.
    """
    return llama3_2(
        vocab_size=768,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        embed_dim=128,
        intermediate_dim=256,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_base=500_000.0,
        scale_factor=32.0,
        tie_word_embeddings=tie_word_embeddings,
    )


def lora_llama3_2_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
    tie_word_embeddings: bool = True,
) -> TransformerDecoder:
    """A 2-layer Llama 3.2 with LoRA; the arguments are :func:`lora_llama3_2`'s.

    ``tie_word_embeddings`` is :func:`llama3_2_tiny`'s (tied by default).
    """
    return lora_llama3_2(
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
        scale_factor=32.0,
        tie_word_embeddings=tie_word_embeddings,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_llama3_2_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
    tie_word_embeddings: bool = True,
) -> TransformerDecoder:
    """A 2-layer Llama 3.2 with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_2_tiny` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_2_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
        tie_word_embeddings=tie_word_embeddings,
    )
