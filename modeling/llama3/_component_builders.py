"""Generic Llama 3 builders: any size, optionally with LoRA."""

from modeling.builders import DecoderSpec, LoRASpec, build_decoder, llama_intermediate_dim
from modeling.modules import RopeScaling, TransformerDecoder


def llama3(
    *,
    vocab_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    embed_dim: int,
    max_seq_len: int,
    intermediate_dim: int | None = None,
    attn_dropout: float = 0.0,
    norm_eps: float = 1e-5,
    rope_base: float = 500_000.0,
    rope_scaling: RopeScaling | None = None,
) -> TransformerDecoder:
    """A Llama 3 decoder: GQA, SwiGLU, RMSNorm, RoPE with base 500000.

    Args:
        vocab_size: Tokens in the vocabulary.
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (must divide ``num_heads``).
        embed_dim: Model width.
        max_seq_len: Longest sequence.
        intermediate_dim: MLP width; Meta's rule (x1.3, multiple of 1024) when omitted.
        attn_dropout: Attention dropout while training.
        norm_eps: RMSNorm epsilon.
        rope_base: Rotary base (``rope_theta``).
        rope_scaling: Llama 3.1 frequency scaling, if any.
    """
    return build_decoder(_spec(**locals()))


def lora_llama3(
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
    intermediate_dim: int | None = None,
    attn_dropout: float = 0.0,
    norm_eps: float = 1e-5,
    rope_base: float = 500_000.0,
    rope_scaling: RopeScaling | None = None,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """:func:`llama3` with LoRA on the chosen projections.

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
        **other: As :func:`llama3`.
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
    rope_scaling,
    **_lora,
) -> DecoderSpec:
    return DecoderSpec(
        vocab_size=vocab_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        embed_dim=embed_dim,
        max_seq_len=max_seq_len,
        intermediate_dim=intermediate_dim
        or llama_intermediate_dim(embed_dim, multiple_of=1024, ffn_dim_multiplier=1.3),
        attn_dropout=attn_dropout,
        norm_eps=norm_eps,
        rope_base=rope_base,
        rope_scaling=rope_scaling,
    )
