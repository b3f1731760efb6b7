"""State-dict conversion between Hugging Face checkpoints and Tunefleet models."""

from modeling.convert.hf import HeadDims, KeyMapper, hf_to_interleaved, interleaved_to_hf
from modeling.convert.key_maps import KEY_MAPS, LLAMA_KEY_MAP, PHI3_KEY_MAP, KeyRule

__all__ = [
    "KEY_MAPS",
    "LLAMA_KEY_MAP",
    "PHI3_KEY_MAP",
    "HeadDims",
    "KeyMapper",
    "KeyRule",
    "hf_to_interleaved",
    "interleaved_to_hf",
]
