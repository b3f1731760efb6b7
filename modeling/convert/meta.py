"""Declarative Meta (``consolidated.NN.pth``) key map and its model-parallel split dims.

Meta's reference checkpoints already use the interleaved rotary layout our model uses, so
conversion is a rename. Multi-file checkpoints hold each rank's slice of Meta's
model-parallel layers: column-parallel weights (wq, wk, wv, w1, w3, output) are split
along dim 0, row-parallel weights (wo, w2) along dim 1, and norms are replicated;
``split_dim`` records which, so readers can concatenate the parts. The embedding depends
on the release: Llama 2 (and Mistral) use ``ParallelEmbedding``, split along the
embedding dim (1), Llama 3 uses ``VocabParallelEmbedding``, split along the vocabulary
(0), as transformers' ``convert_llama_weights_to_hf`` concatenates them. Llama 3.2 ties
its output to the embedding, yet its ``consolidated.00.pth`` stores ``output.weight`` as
a copy of it (:data:`TIED_OUTPUT_MODEL_TYPES`).
"""

import re
from dataclasses import dataclass, replace

import torch

from modeling.convert.hf import key_pattern

# Buffers Meta checkpoints carry that hold no weights of ours (Llama 2's rotary table).
IGNORED_META_KEYS = re.compile(r"rope\.freqs")


@dataclass(frozen=True)
class MetaKeyRule:
    """One Meta tensor name (``{}`` for the layer index), ours, and how ranks split it.

    Attributes:
        meta: Meta's name.
        ours: Our name.
        split_dim: The dim model-parallel files split it along; None when replicated.
    """

    meta: str
    ours: str
    split_dim: int | None


EMBEDDING_KEY = "tok_embeddings.weight"

META_KEY_MAP: tuple[MetaKeyRule, ...] = (
    MetaKeyRule(EMBEDDING_KEY, "tok_embeddings.weight", 1),  # see EMBEDDING_SPLIT_DIMS
    MetaKeyRule("norm.weight", "norm.scale", None),
    MetaKeyRule("output.weight", "output.weight", 0),
    MetaKeyRule("layers.{}.attention.wq.weight", "layers.{}.attn.q_proj.weight", 0),
    MetaKeyRule("layers.{}.attention.wk.weight", "layers.{}.attn.k_proj.weight", 0),
    MetaKeyRule("layers.{}.attention.wv.weight", "layers.{}.attn.v_proj.weight", 0),
    MetaKeyRule("layers.{}.attention.wo.weight", "layers.{}.attn.output_proj.weight", 1),
    MetaKeyRule("layers.{}.feed_forward.w1.weight", "layers.{}.mlp.w1.weight", 0),
    MetaKeyRule("layers.{}.feed_forward.w2.weight", "layers.{}.mlp.w2.weight", 1),
    MetaKeyRule("layers.{}.feed_forward.w3.weight", "layers.{}.mlp.w3.weight", 0),
    MetaKeyRule("layers.{}.attention_norm.weight", "layers.{}.sa_norm.scale", None),
    MetaKeyRule("layers.{}.ffn_norm.weight", "layers.{}.mlp_norm.scale", None),
)

# Model types whose reference checkpoints come in Meta's format, and the dim their
# model-parallel files split the embedding along.
EMBEDDING_SPLIT_DIMS = {"llama3": 0, "llama3_2": 0, "llama2": 1, "mistral": 1}
META_MODEL_TYPES = tuple(EMBEDDING_SPLIT_DIMS)
# Model types whose models tie the output to the embedding while their Meta checkpoints
# store ``output.weight`` as a copy of it: torchtune drops it on load and writes it back
# on save, and so do the Meta checkpointers.
TIED_OUTPUT_MODEL_TYPES = ("llama3_2",)
# The RoPE scale factor that params.json's ``use_scaled_rope: true`` means when it states
# no ``rope_scaling_factor``: llama-models' default 8 (Llama 3.1 and 3.3, model_type
# ``llama3`` as in torchtune), and 32 for Llama 3.2's text models.
SCALED_ROPE_FACTORS = {"llama3": 8.0, "llama3_2": 32.0}


class MetaKeyMapper:
    """:data:`META_KEY_MAP` compiled for lookups in both directions.

    Its rules carry the model type's split dims (the embedding's from
    :data:`EMBEDDING_SPLIT_DIMS`).
    """

    def __init__(self, model_type: str = "llama3") -> None:
        if model_type.lower() not in META_MODEL_TYPES:
            raise ValueError(
                f"model_type {model_type!r} has no Meta checkpoint format; expected one of "
                f"{list(META_MODEL_TYPES)} (use FullModelHFCheckpointer for the others)"
            )
        self.model_type = model_type.lower()
        embedding_dim = EMBEDDING_SPLIT_DIMS[self.model_type]
        rules = [
            replace(rule, split_dim=embedding_dim) if rule.meta == EMBEDDING_KEY else rule
            for rule in META_KEY_MAP
        ]
        self._meta = [(key_pattern(rule.meta), rule) for rule in rules]
        self._ours = [(key_pattern(rule.ours), rule) for rule in rules]

    def meta_rule(self, meta_key: str) -> tuple[MetaKeyRule, str | None]:
        """The rule for a Meta key and its layer index.

        Raises:
            ValueError: Naming the key when no rule matches.
        """
        return _lookup(self._meta, meta_key, "Meta")

    def from_meta(self, meta_key: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Our key and tensor for one (whole) Meta tensor; empty for ignored buffers."""
        if IGNORED_META_KEYS.fullmatch(meta_key):
            return []
        rule, layer = self.meta_rule(meta_key)
        return [(rule.ours.format(layer), tensor)]

    def meta_key(self, key: str) -> tuple[str, MetaKeyRule]:
        """Meta's name for one of our keys, and its rule (which says how files split it)."""
        rule, layer = _lookup(self._ours, key, "our")
        return rule.meta.format(layer), rule

    def to_meta(self, key: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
        """Meta's key and tensor for one of ours."""
        return self.meta_key(key)[0], tensor


def _lookup(patterns, key: str, kind: str) -> tuple[MetaKeyRule, str | None]:
    for pattern, rule in patterns:
        match = pattern.fullmatch(key)
        if match:
            return rule, next(iter(match.groups()), None)
    raise ValueError(f"Unknown {kind} key {key!r}: no rule in the Meta key map matches it")
