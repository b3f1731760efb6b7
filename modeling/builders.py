"""One builder for every decoder family: a spec of sizes and choices in, a model out.

Families differ only in data (sizes, activation, norm form, embedding scale, tied
output), so each family's builders fill a :class:`DecoderSpec` and, for LoRA, a
:class:`LoRASpec`, and call :func:`build_decoder`. Validation lives here once.
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from modeling.modules import (
    GatedMLP,
    MultiHeadAttention,
    RMSNorm,
    RopeScaling,
    RotaryPositionalEmbeddings,
    TransformerDecoder,
    TransformerDecoderLayer,
)
from modeling.peft import FrozenNF4Linear, LoRALinear

LORA_ATTN_MODULES = ("q_proj", "k_proj", "v_proj", "output_proj")
ACTIVATIONS = {"silu": F.silu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh")}


@dataclass(frozen=True)
class DecoderSpec:
    """Sizes and architectural choices of a decoder.

    ``head_dim`` defaults to ``embed_dim // num_heads``. ``gemma_style`` selects Gemma's
    ``1 + weight`` norms, sqrt(embed_dim) embedding scale and tied output projection.
    """

    vocab_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    embed_dim: int
    intermediate_dim: int
    max_seq_len: int
    norm_eps: float = 1e-5
    rope_base: float = 10_000.0
    head_dim: int | None = None
    attn_dropout: float = 0.0
    activation: str = "silu"
    gemma_style: bool = False
    rope_scaling: RopeScaling | None = None


@dataclass(frozen=True)
class LoRASpec:
    """Where LoRA goes and how it is shaped; mirrors the ``lora_*`` builder keywords."""

    lora_attn_modules: tuple[str, ...]
    apply_lora_to_mlp: bool = False
    apply_lora_to_output: bool = False
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    quantize_base: bool = False
    use_dora: bool = False


# The size keywords every generic builder takes, and the options its lora_ form adds.
SIZE_ARGS = (
    "vocab_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "embed_dim",
    "max_seq_len",
    "intermediate_dim",
    "head_dim",
    "attn_dropout",
    "norm_eps",
    "rope_base",
    "rope_scaling",
)
LORA_OPTIONS = (
    "apply_lora_to_mlp",
    "apply_lora_to_output",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "quantize_base",
    "use_dora",
)


def llama_intermediate_dim(
    embed_dim: int,
    multiple_of: int = 256,
    ffn_dim_multiplier: float | None = None,
) -> int:
    """The MLP width Meta's reference code derives from ``embed_dim``."""
    hidden = int(8 * embed_dim / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * math.ceil(hidden / multiple_of)


def build_decoder(spec: DecoderSpec, lora: LoRASpec | None = None) -> TransformerDecoder:
    """Build a decoder (with LoRA where ``lora`` asks) on the current default device.

    Raises:
        ValueError: Naming the argument and the allowed values, for sizes that cannot form
            a model or LoRA options that do not exist.
    """
    head_dim = _validate(spec, lora)
    q_dim, kv_dim = spec.num_heads * head_dim, spec.num_kv_heads * head_dim
    attn_lora = set(lora.lora_attn_modules) if lora else set()

    def linear(name: str, in_dim: int, out_dim: int, adapt: bool) -> nn.Module:
        if lora is not None and adapt:
            return LoRALinear(
                in_dim,
                out_dim,
                rank=lora.lora_rank,
                alpha=lora.lora_alpha,
                dropout=lora.lora_dropout,
                quantize_base=lora.quantize_base,
                use_dora=lora.use_dora,
            )
        if lora is not None and lora.quantize_base and name != "output":
            return FrozenNF4Linear(in_dim, out_dim)
        return nn.Linear(in_dim, out_dim, bias=False)

    def norm(dim: int) -> RMSNorm:
        return RMSNorm(dim, eps=spec.norm_eps, unit_offset=spec.gemma_style)

    rope = RotaryPositionalEmbeddings(
        head_dim,
        max_seq_len=spec.max_seq_len,
        base=spec.rope_base,
        scaling=spec.rope_scaling,
    )
    mlp_lora = bool(lora and lora.apply_lora_to_mlp)
    layers = nn.ModuleList()
    for _ in range(spec.num_layers):
        attn = MultiHeadAttention(
            num_heads=spec.num_heads,
            num_kv_heads=spec.num_kv_heads,
            head_dim=head_dim,
            q_proj=linear("q_proj", spec.embed_dim, q_dim, "q_proj" in attn_lora),
            k_proj=linear("k_proj", spec.embed_dim, kv_dim, "k_proj" in attn_lora),
            v_proj=linear("v_proj", spec.embed_dim, kv_dim, "v_proj" in attn_lora),
            output_proj=linear("output_proj", q_dim, spec.embed_dim, "output_proj" in attn_lora),
            pos_embeddings=rope,
            attn_dropout=spec.attn_dropout,
        )
        mlp = GatedMLP(
            w1=linear("w1", spec.embed_dim, spec.intermediate_dim, mlp_lora),
            w2=linear("w2", spec.intermediate_dim, spec.embed_dim, mlp_lora),
            w3=linear("w3", spec.embed_dim, spec.intermediate_dim, mlp_lora),
            activation=ACTIVATIONS[spec.activation],
        )
        layers.append(
            TransformerDecoderLayer(
                attn=attn,
                mlp=mlp,
                sa_norm=norm(spec.embed_dim),
                mlp_norm=norm(spec.embed_dim),
            )
        )
    output = (
        None
        if spec.gemma_style
        else linear(
            "output", spec.embed_dim, spec.vocab_size, bool(lora and lora.apply_lora_to_output)
        )
    )
    return TransformerDecoder(
        tok_embeddings=nn.Embedding(spec.vocab_size, spec.embed_dim),
        layers=layers,
        norm=norm(spec.embed_dim),
        output=output,
        max_seq_len=spec.max_seq_len,
        embed_scale=spec.embed_dim**0.5 if spec.gemma_style else None,
    )


def _validate(spec: DecoderSpec, lora: LoRASpec | None) -> int:
    """Check sizes and LoRA options; return the head dimension."""
    for name in (
        "vocab_size",
        "num_layers",
        "num_heads",
        "num_kv_heads",
        "embed_dim",
        "intermediate_dim",
        "max_seq_len",
    ):
        value = getattr(spec, name)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if spec.head_dim is None and spec.embed_dim % spec.num_heads:
        raise ValueError(
            f"num_heads={spec.num_heads} must divide embed_dim={spec.embed_dim}; choose "
            f"num_heads from the divisors of {spec.embed_dim} (or pass head_dim)"
        )
    if spec.num_heads % spec.num_kv_heads:
        raise ValueError(
            f"num_kv_heads={spec.num_kv_heads} must divide num_heads={spec.num_heads}; "
            f"allowed: {_divisors(spec.num_heads)}"
        )
    head_dim = spec.head_dim or spec.embed_dim // spec.num_heads
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for rotary embeddings, got {head_dim}")
    if spec.activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {spec.activation!r}"
        )
    if lora is not None:
        _validate_lora(lora, spec)
    return head_dim


def _validate_lora(lora: LoRASpec, spec: DecoderSpec) -> None:
    modules = lora.lora_attn_modules
    if isinstance(modules, str) or not isinstance(modules, Iterable):
        raise ValueError(
            f"lora_attn_modules must be a list drawn from {list(LORA_ATTN_MODULES)}, "
            f"got {modules!r}"
        )
    unknown = sorted(set(modules) - set(LORA_ATTN_MODULES))
    if unknown:
        raise ValueError(
            f"lora_attn_modules has unknown module(s) {unknown}; allowed: {list(LORA_ATTN_MODULES)}"
        )
    if not isinstance(lora.lora_rank, int) or lora.lora_rank <= 0:
        raise ValueError(f"lora_rank must be a positive integer, got {lora.lora_rank!r}")
    if not 0.0 <= lora.lora_dropout < 1.0:
        raise ValueError(f"lora_dropout must be in [0, 1), got {lora.lora_dropout!r}")
    if lora.apply_lora_to_output and spec.gemma_style:
        raise ValueError(
            "apply_lora_to_output=True is not supported for gemma: its output projection is "
            "tied to the token embedding; set apply_lora_to_output=False"
        )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def sized_builders(
    family: str,
    size: str,
    description: str,
    base: Callable[..., TransformerDecoder],
    lora: Callable[..., TransformerDecoder],
    sizes: dict,
) -> tuple[Callable[[], TransformerDecoder], ...]:
    """Make the ``F_size``, ``lora_F_size`` and ``qlora_F_size`` builders of one published size.

    Every family's sized builders differ only in the sizes they pass, so they are made
    here once rather than written out per size.

    Args:
        family: Family name, e.g. ``"llama3"``.
        size: Size suffix, e.g. ``"8b"``.
        description: One line naming the model and its published parameter count.
        base: The family's generic builder.
        lora: The family's generic LoRA builder.
        sizes: The published sizes, as keywords of ``base``.
    """
    module = f"modeling.{family}"

    def plain() -> TransformerDecoder:
        return base(**sizes)

    def lora_sized(
        lora_attn_modules: list[str],
        apply_lora_to_mlp: bool = False,
        apply_lora_to_output: bool = False,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.0,
        quantize_base: bool = False,
        use_dora: bool = False,
    ) -> TransformerDecoder:
        return lora(
            lora_attn_modules,
            apply_lora_to_mlp,
            apply_lora_to_output,
            **sizes,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            quantize_base=quantize_base,
            use_dora=use_dora,
        )

    def qlora_sized(
        lora_attn_modules: list[str],
        apply_lora_to_mlp: bool = False,
        apply_lora_to_output: bool = False,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.0,
        use_dora: bool = False,
    ) -> TransformerDecoder:
        return lora_sized(
            lora_attn_modules,
            apply_lora_to_mlp,
            apply_lora_to_output,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            quantize_base=True,
            use_dora=use_dora,
        )

    size_text = ", ".join(f"{k}={v}" for k, v in sizes.items())
    docs = {
        plain: f"{description}\n\nSizes: {size_text}.",
        lora_sized: f"{description}, with LoRA (keywords as ``lora_{family}``).",
        qlora_sized: f"{description}, with LoRA over an NF4-quantized base (QLoRA).",
    }
    for fn, prefix in ((plain, ""), (lora_sized, "lora_"), (qlora_sized, "qlora_")):
        fn.__name__ = fn.__qualname__ = f"{prefix}{family}_{size}"
        fn.__module__ = module
        fn.__doc__ = docs[fn]
    return plain, lora_sized, qlora_sized


def family_builders(
    family: str,
    title: str,
    *,
    rope_base: float,
    norm_eps: float,
    default_intermediate_dim: Callable[[int], int] | None = None,
    activation: str = "silu",
    gemma_style: bool = False,
) -> tuple[Callable[..., TransformerDecoder], Callable[..., TransformerDecoder]]:
    """Make a family's generic builder ``F(...)`` and its LoRA form ``lora_F(...)``.

    The five families share one signature and differ only in defaults and a few
    architectural switches, so their builders are made here once with explicit keyword
    signatures (which configs bind against) rather than written out five times.

    Args:
        family: Family name, e.g. ``"llama3"``; names the builders.
        title: Human name for docstrings, e.g. ``"Llama 3"``.
        rope_base: Default rotary base.
        norm_eps: Default RMSNorm epsilon.
        default_intermediate_dim: Derives the MLP width from ``embed_dim`` when the caller
            gives none (Meta's rule for Llama); None makes ``intermediate_dim`` required.
        activation: MLP gate activation, ``"silu"`` or ``"gelu_tanh"``.
        gemma_style: Gemma's ``1 + weight`` norms, embedding scale and tied output.
    """

    def spec(
        *,
        vocab_size,
        num_layers,
        num_heads,
        num_kv_heads,
        embed_dim,
        max_seq_len,
        intermediate_dim,
        head_dim,
        attn_dropout,
        norm_eps,
        rope_base,
        rope_scaling,
    ) -> DecoderSpec:
        if intermediate_dim is None:
            if default_intermediate_dim is None:
                raise ValueError(f"intermediate_dim is required for {family}")
            intermediate_dim = default_intermediate_dim(embed_dim)
        return DecoderSpec(
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
            activation=activation,
            gemma_style=gemma_style,
        )

    default_eps, default_base = norm_eps, rope_base

    def base(
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
        norm_eps: float = default_eps,
        rope_base: float = default_base,
        rope_scaling: RopeScaling | None = None,
    ) -> TransformerDecoder:
        args = locals()  # includes closure variables: pick the size keywords
        return build_decoder(spec(**{name: args[name] for name in SIZE_ARGS}))

    def lora(
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
        norm_eps: float = default_eps,
        rope_base: float = default_base,
        rope_scaling: RopeScaling | None = None,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.0,
        quantize_base: bool = False,
        use_dora: bool = False,
    ) -> TransformerDecoder:
        args = locals()
        lora_spec = LoRASpec(
            lora_attn_modules=tuple(lora_attn_modules)
            if isinstance(lora_attn_modules, list | tuple)
            else lora_attn_modules,
            **{name: args[name] for name in LORA_OPTIONS},
        )
        return build_decoder(spec(**{name: args[name] for name in SIZE_ARGS}), lora_spec)

    base.__doc__ = f"""A {title} decoder of any size.

    Args:
        vocab_size: Tokens in the vocabulary.
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (must divide ``num_heads``).
        embed_dim: Model width.
        max_seq_len: Longest sequence the rotary tables cover.
        intermediate_dim: MLP width{
        "" if default_intermediate_dim is None else "; Meta's rule from embed_dim when omitted"
    }.
        head_dim: Channels per head; ``embed_dim // num_heads`` when omitted.
        attn_dropout: Attention dropout while training.
        norm_eps: RMSNorm epsilon (default {default_eps}).
        rope_base: Rotary base, ``rope_theta`` (default {default_base:g}).
        rope_scaling: Llama 3.1-style frequency scaling, if any.
    """
    lora.__doc__ = f"""A {title} decoder with LoRA on the chosen projections.

    Args:
        lora_attn_modules: Attention projections to adapt, from ``q_proj``, ``k_proj``,
            ``v_proj``, ``output_proj``.
        apply_lora_to_mlp: Adapt the three MLP projections too.
        apply_lora_to_output: Adapt the final vocabulary projection{
        " (rejected: the output is tied to the embedding)" if gemma_style else ""
    }.
        lora_rank: Adapter rank.
        lora_alpha: Adapter scale numerator (update scaled by ``alpha / rank``).
        lora_dropout: Dropout on adapter inputs.
        quantize_base: Store frozen projections as NF4 (QLoRA).
        use_dora: Learn DoRA magnitudes as well.
        **sizes: As ``{family}(...)``.
    """
    for fn, name in ((base, family), (lora, f"lora_{family}")):
        fn.__name__ = fn.__qualname__ = name
        fn.__module__ = f"modeling.{family}"
    return base, lora
