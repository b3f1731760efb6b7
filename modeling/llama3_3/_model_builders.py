"""Llama 3.3 at its published size, and the tiny size tests and benchmarks use.

Llama 3.3 70B has Llama 3.1 70B's architecture (only the weights differ), so these
builders call Llama 3.1's generic builders, as torchtune's do.
"""

from modeling.llama3_1 import llama3_1, lora_llama3_1
from modeling.modules import TransformerDecoder


def llama3_3_70b() -> TransformerDecoder:
    """Llama 3.3 70B (70.6B parameters)."""
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


def lora_llama3_3_70b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.3 70B with LoRA; the arguments are :func:`lora_llama3_1`'s."""
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


def qlora_llama3_3_70b(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """Llama 3.3 70B with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_3_70b` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_3_70b(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )


def llama3_3_tiny() -> TransformerDecoder:
    """A 2-layer Llama 3.3 (0.49M parameters) for tests and benchmarks.

    The same model as :func:`~modeling.llama3_1.llama3_1_tiny`, under Llama 3.3's name.
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


def lora_llama3_3_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Llama 3.3 with LoRA; the arguments are :func:`lora_llama3_1`'s."""
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


def qlora_llama3_3_tiny(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A 2-layer Llama 3.3 with LoRA over an NF4-quantized base (QLoRA).

    :func:`lora_llama3_3_tiny` with ``quantize_base=True``; the other arguments are the same.
    """
    return lora_llama3_3_tiny(
        lora_attn_modules,
        apply_lora_to_mlp,
        apply_lora_to_output,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        quantize_base=True,
        use_dora=use_dora,
    )
