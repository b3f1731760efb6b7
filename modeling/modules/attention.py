"""Causal self-attention with grouped-query heads.

Unpacked batches and KV-cache decoding go through ``scaled_dot_product_attention``
(``is_causal``, so the flash kernel applies). Packed batches pass either a dense
block-causal mask (SDPA) or a flex_attention ``BlockMask`` (see ``attention_masks``).
"""

import functools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from modeling.modules.kv_cache import KVCache
from modeling.modules.rotary import RotaryPositionalEmbeddings


@functools.cache
def _compiled_flex_attention():
    # One compiled flex_attention for the process, as torchtune's
    # compile_friendly_flex_attention: without compile it materialises every score.
    return torch.compile(flex_attention, dynamic=False)


def _flex_attention(q, k, v, block_mask: BlockMask, enable_gqa: bool) -> torch.Tensor:
    """Fused (compiled) flex_attention on CUDA; eager elsewhere, and inside an outer compile.

    Inside ``torch.compile`` (e.g. a compiled decoder layer) the plain function is traced
    into the outer graph, which fuses it too. On the CPU only eager runs: inductor has no
    CPU flex_attention backward, and torch refuses CPU backward either way.
    """
    if q.device.type == "cuda" and not torch.compiler.is_compiling():
        return _compiled_flex_attention()(q, k, v, block_mask=block_mask, enable_gqa=enable_gqa)
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=enable_gqa)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with ``num_kv_heads <= num_heads`` (GQA/MQA when fewer).

    The projections are passed in so that LoRA or NF4 variants can be chosen at build
    time without this module knowing about them.

    Args:
        num_heads: Query heads.
        num_kv_heads: Key/value heads; must divide ``num_heads``.
        head_dim: Channels per head.
        q_proj: ``embed_dim -> num_heads * head_dim``.
        k_proj: ``embed_dim -> num_kv_heads * head_dim``.
        v_proj: ``embed_dim -> num_kv_heads * head_dim``.
        output_proj: ``num_heads * head_dim -> embed_dim``.
        pos_embeddings: Rotary embeddings applied to queries and keys.
        attn_dropout: Dropout on attention probabilities while training.
    """

    def __init__(
        self,
        *,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        q_proj: nn.Module,
        k_proj: nn.Module,
        v_proj: nn.Module,
        output_proj: nn.Module,
        pos_embeddings: RotaryPositionalEmbeddings,
        attn_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.attn_dropout = attn_dropout
        self.q_proj = q_proj
        self.k_proj = k_proj
        self.v_proj = v_proj
        self.output_proj = output_proj
        self.pos_embeddings = pos_embeddings
        self.kv_cache: KVCache | None = None

    def forward(
        self,
        x: torch.Tensor,
        *,
        mask: torch.Tensor | BlockMask | None = None,
        input_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend causally over ``x`` of shape ``[batch, seq, embed_dim]``.

        Args:
            x: Hidden states.
            mask: Optional attention mask for packed sequences, for SDPA a
                ``[batch, seq, seq]`` tensor (boolean, True where a query may attend a
                key, or additive: 0 or -inf), or a flex_attention ``BlockMask`` (fused
                kernel). Causal when omitted.
            input_pos: Optional positions for the rotary embeddings.

        Raises:
            ValueError: If a BlockMask is given to a training module with attention
                dropout, which flex_attention cannot apply.
        """
        bsz, seq_len, _ = x.shape
        q = self.q_proj(x).view(bsz, seq_len, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(bsz, seq_len, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(bsz, seq_len, self.num_kv_heads, self.head_dim)
        if self.kv_cache is not None and input_pos is None:
            start = self.kv_cache.size
            input_pos = torch.arange(start, start + seq_len, device=x.device)
        q = self.pos_embeddings(q, input_pos).transpose(1, 2)
        k = self.pos_embeddings(k, input_pos).transpose(1, 2)
        v = v.transpose(1, 2)

        is_causal = mask is None
        if self.kv_cache is not None:
            past = self.kv_cache.size
            k, v = self.kv_cache.update(k, v)
            if mask is None and past > 0:
                # Query i (absolute position past + i) sees keys 0..past + i.
                key_pos = torch.arange(k.shape[2], device=x.device)
                query_pos = torch.arange(past, past + seq_len, device=x.device)
                mask = key_pos[None, :] <= query_pos[:, None]
                is_causal = False
        gqa = self.num_kv_heads != self.num_heads
        if isinstance(mask, BlockMask):
            if self.training and self.attn_dropout > 0:
                raise ValueError(
                    f"attn_dropout={self.attn_dropout} cannot be applied by flex_attention, "
                    "which packed batches use on GPU; build the model with attn_dropout=0.0 "
                    "or train without dataset.packed"
                )
            out = _flex_attention(q, k, v, mask, enable_gqa=gqa)
        else:
            if mask is not None and mask.dim() == 3:
                mask = mask[:, None]  # broadcast over heads
            if mask is not None and mask.is_floating_point() and mask.dtype != q.dtype:
                mask = mask.to(q.dtype)  # an additive mask must match the compute dtype
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                dropout_p=self.attn_dropout if self.training else 0.0,
                is_causal=is_causal,
                enable_gqa=gqa,
            )
        return self.output_proj(out.transpose(1, 2).reshape(bsz, seq_len, -1))
