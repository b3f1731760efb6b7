"""Building blocks shared by every decoder family."""

from modeling.modules.attention import MultiHeadAttention
from modeling.modules.kv_cache import KVCache
from modeling.modules.mlp import GatedMLP
from modeling.modules.norms import RMSNorm
from modeling.modules.rotary import RopeScaling, RotaryPositionalEmbeddings
from modeling.modules.scaled_rotary import Llama3ScaledRoPE, llama3_rope_scaling
from modeling.modules.transformer import TransformerDecoder, TransformerDecoderLayer

__all__ = [
    "GatedMLP",
    "KVCache",
    "Llama3ScaledRoPE",
    "MultiHeadAttention",
    "RMSNorm",
    "RopeScaling",
    "RotaryPositionalEmbeddings",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "llama3_rope_scaling",
]
