"""Declarative Hugging Face key maps, one per checkpoint layout.

Each rule maps one Hugging Face tensor name (``{}`` stands for the layer index) to one of
ours, or to several when Hugging Face fuses projections (Phi-3's ``qkv_proj`` and
``gate_up_proj``). ``rotary`` marks the q/k projections whose rows Hugging Face stores
permuted for its rotate-half RoPE; the converter un-permutes them into Meta's
interleaved layout that :mod:`modeling.modules.rotary` uses.

Llama 3, Llama 2, Mistral and Gemma checkpoints share the Llama layout (Gemma simply has
no ``lm_head``: its output is tied to the embedding). Qwen 2 / 2.5 adds q/k/v biases, whose
q/k rows are permuted like their weights (and has no ``lm_head`` at its tied sizes).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyRule:
    """One Hugging Face tensor and the tensor(s) of ours it holds.

    Attributes:
        hf: The Hugging Face name, ``{}`` for the layer index.
        ours: Our name(s); several when the Hugging Face tensor fuses them along rows.
        rotary: ``"q"`` or ``"k"`` for projections stored in rotate-half order.
        fused: How rows split among ``ours``: ``"qkv"`` (q, k, v head blocks, q and k in
            rotate-half order) or ``"halves"`` (two equal halves, e.g. gate and up).
    """

    hf: str
    ours: tuple[str, ...]
    rotary: str | None = None
    fused: str | None = None


_LAYER_NORMS = (
    KeyRule("model.layers.{}.input_layernorm.weight", ("layers.{}.sa_norm.scale",)),
    KeyRule("model.layers.{}.post_attention_layernorm.weight", ("layers.{}.mlp_norm.scale",)),
)
_ENDS = (
    KeyRule("model.embed_tokens.weight", ("tok_embeddings.weight",)),
    KeyRule("model.norm.weight", ("norm.scale",)),
    KeyRule("lm_head.weight", ("output.weight",)),
)
_O_PROJ = KeyRule("model.layers.{}.self_attn.o_proj.weight", ("layers.{}.attn.output_proj.weight",))
_DOWN = KeyRule("model.layers.{}.mlp.down_proj.weight", ("layers.{}.mlp.w2.weight",))

LLAMA_KEY_MAP: tuple[KeyRule, ...] = (
    *_ENDS,
    *_LAYER_NORMS,
    KeyRule("model.layers.{}.self_attn.q_proj.weight", ("layers.{}.attn.q_proj.weight",), "q"),
    KeyRule("model.layers.{}.self_attn.k_proj.weight", ("layers.{}.attn.k_proj.weight",), "k"),
    KeyRule("model.layers.{}.self_attn.v_proj.weight", ("layers.{}.attn.v_proj.weight",)),
    _O_PROJ,
    KeyRule("model.layers.{}.mlp.gate_proj.weight", ("layers.{}.mlp.w1.weight",)),
    _DOWN,
    KeyRule("model.layers.{}.mlp.up_proj.weight", ("layers.{}.mlp.w3.weight",)),
)

QWEN2_KEY_MAP: tuple[KeyRule, ...] = (
    *LLAMA_KEY_MAP,
    KeyRule("model.layers.{}.self_attn.q_proj.bias", ("layers.{}.attn.q_proj.bias",), "q"),
    KeyRule("model.layers.{}.self_attn.k_proj.bias", ("layers.{}.attn.k_proj.bias",), "k"),
    KeyRule("model.layers.{}.self_attn.v_proj.bias", ("layers.{}.attn.v_proj.bias",)),
)

PHI3_KEY_MAP: tuple[KeyRule, ...] = (
    *_ENDS,
    *_LAYER_NORMS,
    KeyRule(
        "model.layers.{}.self_attn.qkv_proj.weight",
        (
            "layers.{}.attn.q_proj.weight",
            "layers.{}.attn.k_proj.weight",
            "layers.{}.attn.v_proj.weight",
        ),
        fused="qkv",
    ),
    _O_PROJ,
    KeyRule(
        "model.layers.{}.mlp.gate_up_proj.weight",
        ("layers.{}.mlp.w1.weight", "layers.{}.mlp.w3.weight"),
        fused="halves",
    ),
    _DOWN,
)

KEY_MAPS: dict[str, tuple[KeyRule, ...]] = {
    "llama3": LLAMA_KEY_MAP,  # also Llama 3.1 and 3.3 (torchtune's LLAMA3)
    "llama3_2": LLAMA_KEY_MAP,  # tied output: no lm_head
    "llama2": LLAMA_KEY_MAP,
    "mistral": LLAMA_KEY_MAP,
    "gemma": LLAMA_KEY_MAP,
    "phi3_mini": PHI3_KEY_MAP,
    "qwen2": QWEN2_KEY_MAP,
}
