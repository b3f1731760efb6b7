"""State-dict conversion between Hugging Face or Meta checkpoints and Tunefleet models."""

from modeling.convert.hf import HeadDims, KeyMapper, hf_to_interleaved, interleaved_to_hf
from modeling.convert.key_maps import (
    KEY_MAPS,
    LLAMA_KEY_MAP,
    PHI3_KEY_MAP,
    QWEN2_KEY_MAP,
    KeyRule,
)
from modeling.convert.meta import META_KEY_MAP, MetaKeyMapper, MetaKeyRule

__all__ = [
    "KEY_MAPS",
    "LLAMA_KEY_MAP",
    "META_KEY_MAP",
    "PHI3_KEY_MAP",
    "QWEN2_KEY_MAP",
    "HeadDims",
    "KeyMapper",
    "KeyRule",
    "MetaKeyMapper",
    "MetaKeyRule",
    "hf_to_interleaved",
    "interleaved_to_hf",
]
