"""Phi-3 at its published size, and a tiny size for tests and benchmarks."""

from modeling.modules import TransformerDecoder
from modeling.phi3._component_builders import lora_phi3, phi3


def phi3_mini() -> TransformerDecoder:
    """Phi-3 mini 4k (3.82B parameters)."""
    return phi3(
        vocab_size=32_064,
        num_layers=32,
        num_heads=32,
        num_kv_heads=32,
        embed_dim=3072,
        intermediate_dim=8192,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_phi3_mini(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Phi-3 mini 4k with LoRA; the arguments are :func:`lora_phi3`'s."""
    return lora_phi3(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=32_064,
        num_layers=32,
        num_heads=32,
        num_kv_heads=32,
        embed_dim=3072,
        intermediate_dim=8192,
        max_seq_len=4096,
        norm_eps=1e-5,
        rope_base=10_000.0,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=quantize_base,
        use_dora=use_dora,
    )


def qlora_phi3_mini(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Phi-3 mini 4k with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_phi3_mini` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_phi3_mini(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def phi3_tiny() -> TransformerDecoder:
    """A 2-layer Phi-3 (4.19M parameters) for tests and benchmarks.

    It keeps Phi-3's 32064-token vocabulary (most of the parameters): the Phi-3
    tokenizer's added tokens have ids from 32000 up.
    """
    return phi3(
        vocab_size=32_064,
        num_layers=2,
        num_heads=4,
        num_kv_heads=4,
        embed_dim=64,
        intermediate_dim=128,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_base=10_000.0,
    )


def lora_phi3_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Phi-3 with LoRA; the arguments are :func:`lora_phi3`'s."""
    return lora_phi3(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        vocab_size=32_064,
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


def qlora_phi3_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Phi-3 with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_phi3_tiny` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_phi3_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
