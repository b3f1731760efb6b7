"""Generic Mistral builders: any size, optionally with LoRA."""

from modeling.builders import DecoderSpec, LoRASpec, build_decoder
from modeling.modules import TransformerDecoder


def mistral(
    *,
    vocab_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    embed_dim: int,
    max_seq_len: int,
    intermediate_dim: int,
    attn_dropout: float = 0.0,
    norm_eps: float = 1e-5,
    rope_base: float = 10_000.0,
) -> TransformerDecoder:
    """A Mistral decoder: GQA, SwiGLU, RMSNorm, RoPE.

    Sliding-window attention is not applied: it only matters past 4096 tokens.

    Args:
        vocab_size: Tokens in the vocabulary.
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (must divide ``num_heads``).
        embed_dim: Model width.
        max_seq_len: Longest sequence.
        intermediate_dim: MLP width.
        attn_dropout: Attention dropout while training.
        norm_eps: RMSNorm epsilon.
        rope_base: Rotary base (``rope_theta``).
    """
    return build_decoder(_spec(**locals()))


def lora_mistral(
    lora_attn_modules: list[str],
    apply_lora_to_mlp: bool = False,
    apply_lora_to_output: bool = False,
    *,
    vocab_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    embed_dim: int,
    max_seq_len: int,
    intermediate_dim: int,
    attn_dropout: float = 0.0,
    norm_eps: float = 1e-5,
    rope_base: float = 10_000.0,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """:func:`mistral` with LoRA on the chosen projections.

    Args:
        lora_attn_modules: Attention projections to adapt, from ``q_proj``, ``k_proj``,
            ``v_proj``, ``output_proj``.
        apply_lora_to_mlp: Adapt the three MLP projections too.
        apply_lora_to_output: Adapt the final vocabulary projection.
        lora_rank: Adapter rank.
        lora_alpha: Adapter scale numerator (update scaled by ``alpha / rank``).
        lora_dropout: Dropout on adapter inputs.
        quantize_base: Store frozen projections as NF4 (QLoRA).
        use_dora: Learn DoRA magnitudes as well.
        **other: As :func:`mistral`.
    """
    args = locals()
    return build_decoder(_spec(**args), LoRASpec.from_kwargs(args))


def _spec(
    *,
    vocab_size,
    num_layers,
    num_heads,
    num_kv_heads,
    embed_dim,
    max_seq_len,
    intermediate_dim,
    attn_dropout,
    norm_eps,
    rope_base,
    **_lora,
) -> DecoderSpec:
    return DecoderSpec(
        vocab_size=vocab_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        embed_dim=embed_dim,
        max_seq_len=max_seq_len,
        intermediate_dim=intermediate_dim,
        attn_dropout=attn_dropout,
        norm_eps=norm_eps,
        rope_base=rope_base,
    )
