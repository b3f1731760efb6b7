"""Generic Qwen 2.5: Llama's decoder with q/k/v biases, RoPE base 1e6, optional tied output."""

from modeling.builders import DecoderSpec, LoRASpec, build_decoder
from modeling.modules import RopeScaling, TransformerDecoder


def qwen2_5(
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
    norm_eps: float = 1e-6,
    rope_base: float = 1_000_000.0,
    rope_scaling: RopeScaling | None = None,
    tie_word_embeddings: bool = False,
) -> TransformerDecoder:
    """A Qwen 2.5 decoder of any size (torchtune's ``qwen2``).

    Grouped-query attention whose q/k/v projections carry a bias (the output projection
    none), SwiGLU MLP, RMSNorm, RoPE; the 0.5B to 3B models tie the output projection
    to the token embedding, so they have no ``output.weight``.

    Args:
        vocab_size: Tokens in the vocabulary (embedding rows, padded beyond the tokenizer).
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (must divide ``num_heads``).
        embed_dim: Model width.
        max_seq_len: Longest sequence the rotary tables cover.
        intermediate_dim: MLP width (required: Qwen has no rule for it).
        head_dim: Channels per head; ``embed_dim // num_heads`` when omitted.
        attn_dropout: Attention dropout while training.
        norm_eps: RMSNorm epsilon (default 1e-6).
        rope_base: Rotary base, ``rope_theta`` (default 1000000).
        rope_scaling: Llama 3.1-style frequency scaling, if any (Qwen 2.5 uses none).
        tie_word_embeddings: Compute logits with the token embedding (no output weight).

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
            intermediate_dim=intermediate_dim,
            head_dim=head_dim,
            attn_dropout=attn_dropout,
            norm_eps=norm_eps,
            rope_base=rope_base,
            rope_scaling=rope_scaling,
            tie_word_embeddings=tie_word_embeddings,
            qkv_bias=True,
            family="qwen2_5",
        )
    )


def lora_qwen2_5(
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
    norm_eps: float = 1e-6,
    rope_base: float = 1_000_000.0,
    rope_scaling: RopeScaling | None = None,
    tie_word_embeddings: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    quantize_base: bool = False,
    use_dora: bool = False,
) -> TransformerDecoder:
    """A Qwen 2.5 decoder with LoRA on the chosen projections; the rest as :func:`qwen2_5`.

    An adapted q/k/v projection keeps its base bias, frozen with the base weight.

    Args:
        lora_attn_modules: Attention projections to adapt, from ``q_proj``, ``k_proj``,
            ``v_proj``, ``output_proj``.
        apply_lora_to_mlp: Adapt the three MLP projections too.
        apply_lora_to_output: Adapt the final vocabulary projection (rejected when it is
            tied to the embedding).
        vocab_size: Tokens in the vocabulary (embedding rows, padded beyond the tokenizer).
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (must divide ``num_heads``).
        embed_dim: Model width.
        max_seq_len: Longest sequence the rotary tables cover.
        intermediate_dim: MLP width (required: Qwen has no rule for it).
        head_dim: Channels per head; ``embed_dim // num_heads`` when omitted.
        attn_dropout: Attention dropout while training.
        norm_eps: RMSNorm epsilon (default 1e-6).
        rope_base: Rotary base, ``rope_theta`` (default 1000000).
        rope_scaling: Llama 3.1-style frequency scaling, if any (Qwen 2.5 uses none).
        tie_word_embeddings: Compute logits with the token embedding (no output weight).
        lora_rank: Adapter rank.
        lora_alpha: Adapter scale numerator (the update is scaled by ``alpha / rank``).
        lora_dropout: Dropout on adapter inputs.
        quantize_base: Store the frozen projections as NF4 (QLoRA).
        use_dora: Learn DoRA magnitudes (one per output row) as well.

    Returns:
        The decoder, built on the current default device (``torch.device("meta")`` works).

    Raises:
        ValueError: Naming the argument, for impossible sizes or unknown LoRA options.
    """
    return build_decoder(
        DecoderSpec(
            vocab_size=vocab_size,
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            embed_dim=embed_dim,
            max_seq_len=max_seq_len,
            intermediate_dim=intermediate_dim,
            head_dim=head_dim,
            attn_dropout=attn_dropout,
            norm_eps=norm_eps,
            rope_base=rope_base,
            rope_scaling=rope_scaling,
            tie_word_embeddings=tie_word_embeddings,
            qkv_bias=True,
            family="qwen2_5",
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
