"""One builder for every decoder family: a spec of sizes and choices in, a model out.

Families differ only in data (sizes, activation, norm form, embedding scale, tied
output), so each family's builders (``modeling.<family>._component_builders``, written out
as plain functions) fill a :class:`DecoderSpec` and, for LoRA, a :class:`LoRASpec`, and
call :func:`build_decoder`. Validation lives here once.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

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
    ``tie_word_embeddings`` ties the output projection to the embedding alone (Llama 3.2).
    ``qkv_bias`` gives the q/k/v projections a bias (Qwen 2.5); it stays frozen under LoRA.
    ``family`` names the builder in error messages. ``intermediate_dim`` may be None only
    to have :func:`build_decoder` say that the family needs it.
    """

    vocab_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    embed_dim: int
    intermediate_dim: int | None
    max_seq_len: int
    norm_eps: float = 1e-5
    rope_base: float = 10_000.0
    head_dim: int | None = None
    attn_dropout: float = 0.0
    activation: str = "silu"
    gemma_style: bool = False
    rope_scaling: RopeScaling | None = None
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    family: str = "decoder"


@dataclass(frozen=True)
class LoRASpec:
    """Where LoRA goes and how it is shaped; mirrors the ``lora_*`` builder keywords.

    A list of ``lora_attn_modules`` is stored as a tuple, so the spec stays immutable.
    """

    lora_attn_modules: tuple[str, ...]
    apply_lora_to_mlp: bool = False
    apply_lora_to_output: bool = False
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    quantize_base: bool = False
    use_dora: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.lora_attn_modules, list | tuple):
            object.__setattr__(self, "lora_attn_modules", tuple(self.lora_attn_modules))


# The DecoderSpec fields a family fixes itself rather than taking as shared builder keywords
# (a family may still expose one: llama3_2 takes tie_word_embeddings, as torchtune's does).
_FAMILY_CHOICES = ("activation", "gemma_style", "tie_word_embeddings", "qkv_bias", "family")
# The size keywords every generic builder takes (``llama3(...)``, ...), and the options
# its ``lora_`` form adds after ``lora_attn_modules``.
SIZE_ARGS = tuple(f.name for f in fields(DecoderSpec) if f.name not in _FAMILY_CHOICES)
LORA_OPTIONS = tuple(f.name for f in fields(LoRASpec) if f.name != "lora_attn_modules")


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
        bias = spec.qkv_bias and name in ("q_proj", "k_proj", "v_proj")
        if lora is not None and adapt:
            return LoRALinear(
                in_dim,
                out_dim,
                rank=lora.lora_rank,
                alpha=lora.lora_alpha,
                dropout=lora.lora_dropout,
                quantize_base=lora.quantize_base,
                use_dora=lora.use_dora,
                use_bias=bias,
            )
        if lora is not None and lora.quantize_base and name != "output":
            return FrozenNF4Linear(in_dim, out_dim, use_bias=bias)
        return nn.Linear(in_dim, out_dim, bias=bias)

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
        if spec.gemma_style or spec.tie_word_embeddings
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


def decoder_sizes(model: TransformerDecoder) -> dict[str, int | float]:
    """The size keywords of a generic builder that rebuild ``model``'s base architecture.

    Read off the built modules (works on ``meta``), so a sized builder such as
    ``lora_llama3_tiny()`` can be turned back into the sizes a checkpoint's
    ``config.json`` needs.
    """
    layer = model.layers[0]
    return {
        "vocab_size": model.tok_embeddings.num_embeddings,
        "num_layers": len(model.layers),
        "num_heads": layer.attn.num_heads,
        "num_kv_heads": layer.attn.num_kv_heads,
        "embed_dim": model.tok_embeddings.embedding_dim,
        "intermediate_dim": layer.mlp.w1.weight.shape[0],
        "max_seq_len": model.max_seq_len,
        "head_dim": layer.attn.head_dim,
        "norm_eps": model.norm.eps,
        "rope_base": layer.attn.pos_embeddings.base,
    }


def _validate(spec: DecoderSpec, lora: LoRASpec | None) -> int:
    """Check sizes and LoRA options; return the head dimension."""
    if spec.intermediate_dim is None:
        raise ValueError(f"intermediate_dim is required for {spec.family}")
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
    if lora.apply_lora_to_output and (spec.gemma_style or spec.tie_word_embeddings):
        raise ValueError(
            f"apply_lora_to_output=True is not supported for {spec.family}: its output "
            "projection is tied to the token embedding; set apply_lora_to_output=False"
        )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
