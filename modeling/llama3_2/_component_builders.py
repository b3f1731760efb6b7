"""Generic Llama 3.2 (text): Llama 3.1's architecture, RoPE scaled by 32, tied output."""

from modeling.builders import DecoderSpec, LoRASpec, build_decoder
from modeling.llama3._component_builders import _intermediate_dim
from modeling.modules import TransformerDecoder, llama3_rope_scaling


def llama3_2(
    *,
    vocab_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    embed_dim: int,
    max_seq_len: int,
    intermediate_dim: int | None = None,
    head_dim: int | None = None,
    attn_dropout: float = 0.0,
    norm_eps: float = 1e-5,
    rope_base: float = 500_000.0,
    scale_factor: float = 32.0,
    tie_word_embeddings: bool = True,
) -> TransformerDecoder:
    """A Llama 3.2 text decoder of any size.

    Grouped-query attention, SwiGLU MLP, RMSNorm, RoPE with Llama 3.1's frequency
    scaling (:class:`~modeling.modules.Llama3ScaledRoPE`), and by default an output
    projection tied to the token embedding: the model has no ``output.weight`` and
    computes logits with the embedding matrix, as Meta's 1B and 3B checkpoints do.

    Args:
        vocab_size: Tokens in the vocabulary.
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (must divide ``num_heads``).
        embed_dim: Model width.
        max_seq_len: Longest sequence the rotary tables cover.
        intermediate_dim: MLP width; when omitted, Meta's Llama 3 rule (8/3 x ``embed_dim``
            x 1.3, rounded up to a multiple of 1024).
        head_dim: Channels per head; ``embed_dim // num_heads`` when omitted.
        attn_dropout: Attention dropout while training.
        norm_eps: RMSNorm epsilon (default 1e-5).
        rope_base: Rotary base, ``rope_theta`` (default 500000).
        scale_factor: RoPE low-frequency stretch, ``rope_scaling.factor`` (default 32).
        tie_word_embeddings: Tie the output projection to the embedding (default True).

    Returns:
        The decoder, built on the current default device (``torch.device("meta")`` works).

    Raises:
        ValueError: Naming the argument, for sizes that cannot form a model.
    """
    return build_decoder(
        DecoderSpec(
            vocab_size=vocab_size,
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            embed_dim=embed_dim,
            max_seq_len=max_seq_len,
            intermediate_dim=_intermediate_dim(intermediate_dim, embed_dim),
            head_dim=head_dim,
            attn_dropout=attn_dropout,
            norm_eps=norm_eps,
            rope_base=rope_base,
            rope_scaling=llama3_rope_scaling(scale_factor),
            tie_word_embeddings=tie_word_embeddings,
            family="llama3_2",
        )
    )


def lora_llama3_2(
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
    head_dim: int | None = None,
    attn_dropout: float = 0.0,
    norm_eps: float = 1e-5,
    rope_base: float = 500_000.0,
    scale_factor: float = 32.0,
    tie_word_embeddings: bool = True,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A Llama 3.2 decoder with LoRA on the chosen projections; the rest as :func:`llama3_2`.

    A tied output projection is the embedding itself, so it takes no adapter:
    ``apply_lora_to_output=True`` needs ``tie_word_embeddings=False``.

    Args:
        lora_attn_modules: Attention projections to adapt, from ``q_proj``, ``k_proj``,
            ``v_proj``, ``output_proj``.
        apply_lora_to_mlp: Adapt the three MLP projections too.
        apply_lora_to_output: Adapt the final vocabulary projection (untied models only).
        vocab_size: Tokens in the vocabulary.
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (must divide ``num_heads``).
        embed_dim: Model width.
        max_seq_len: Longest sequence the rotary tables cover.
        intermediate_dim: MLP width; when omitted, Meta's Llama 3 rule (8/3 x ``embed_dim``
            x 1.3, rounded up to a multiple of 1024).
        head_dim: Channels per head; ``embed_dim // num_heads`` when omitted.
        attn_dropout: Attention dropout while training.
        norm_eps: RMSNorm epsilon (default 1e-5).
        rope_base: Rotary base, ``rope_theta`` (default 500000).
        scale_factor: RoPE low-frequency stretch, ``rope_scaling.factor`` (default 32).
        tie_word_embeddings: Tie the output projection to the embedding (default True).
        lora_rank: Adapter rank.
        lora_alpha: Adapter scale numerator (the update is scaled by ``alpha / rank``).
        lora_dropout: Dropout on adapter inputs.
        quantize_base: Store the frozen projections as NF4 (QLoRA).
        use_dora: Learn DoRA magnitudes (one per output row) as well.

    Returns:
        The decoder, built on the current default device (``torch.device("meta")`` works).

    Raises:
        ValueError: Naming the argument, for impossible sizes, unknown LoRA options or
            LoRA on a tied output.
    """
    return build_decoder(
        DecoderSpec(
            vocab_size=vocab_size,
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            embed_dim=embed_dim,
            max_seq_len=max_seq_len,
            intermediate_dim=_intermediate_dim(intermediate_dim, embed_dim),
            head_dim=head_dim,
            attn_dropout=attn_dropout,
            norm_eps=norm_eps,
            rope_base=rope_base,
            rope_scaling=llama3_rope_scaling(scale_factor),
            tie_word_embeddings=tie_word_embeddings,
            family="llama3_2",
        ),
        LoRASpec(
            lora_attn_modules=lora_attn_modules,
            apply_lora_to_mlp=apply_lora_to_mlp,
            apply_lora_to_output=apply_lora_to_output,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            quantize_base=quantize_base,
            use_dora=use_dora,
        ),
    )
