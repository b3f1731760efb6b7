"""Block-causal document masks for packed sequences: a flex_attention BlockMask or a dense one.

A pack holds several documents back to back, and a token may attend only to itself and
earlier tokens of its own document. ``document_ids[b, i]`` names the document of token i
of pack b. Where flex_attention trains (CUDA) the mask is a :class:`BlockMask`: the fused
kernel skips every 128x128 block with no allowed pair and keeps O((s/128)^2) metadata
instead of an ``s x s`` mask. On the CPU it is a dense mask for
``scaled_dot_product_attention``, because torch's flex_attention refuses backward on the
CPU (``docs/benchmarks.md``, "Packed attention").
"""

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask


def _check_document_ids(document_ids: torch.Tensor) -> None:
    if document_ids.dim() != 2 or document_ids.dtype.is_floating_point:
        raise ValueError(
            "document_ids must be an integer tensor of shape [batch, seq], got "
            f"{document_ids.dtype} of shape {list(document_ids.shape)}"
        )


def block_causal_dense_mask(document_ids: torch.Tensor) -> torch.Tensor:
    """``[batch, seq, seq]`` bool, True where query i may attend key j (j <= i, same document)."""
    _check_document_ids(document_ids)
    seq = document_ids.shape[1]
    same_doc = document_ids[:, :, None] == document_ids[:, None, :]
    causal = torch.ones(seq, seq, dtype=torch.bool, device=document_ids.device).tril()
    return same_doc & causal


def block_causal_block_mask(document_ids: torch.Tensor) -> BlockMask:
    """The same mask as :func:`block_causal_dense_mask`, as a BlockMask on ``document_ids``' device.

    Built once per batch and shared by every layer (as torchtune's
    ``packed_block_causal_mask`` and torchtitan's document masks).
    """
    _check_document_ids(document_ids)
    batch, seq = document_ids.shape

    def document_causal(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (document_ids[b, q_idx] == document_ids[b, kv_idx])

    return create_block_mask(document_causal, batch, None, seq, seq, device=document_ids.device)


def block_causal_additive_mask(
    document_ids: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The dense mask as SDPA's additive form: ``[batch, seq, seq]``, 0 to attend, -inf not.

    SDPA converts a boolean mask to this form inside every call and saves each copy for
    backward (``batch x seq^2`` floats per layer on the CPU); one additive mask given to
    every layer is saved once, by reference.
    """
    allowed = block_causal_dense_mask(document_ids)
    additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return additive.masked_fill_(~allowed, float("-inf"))


def packed_attention_mask(document_ids: torch.Tensor) -> BlockMask | torch.Tensor:
    """The mask a packed batch gives ``model(tokens, mask=..., input_pos=...)``, chosen by device.

    CUDA gets a BlockMask (flex_attention's fused kernel; an explicit dense mask would
    rule out SDPA's flash kernel and cost ``batch x seq^2`` per layer). Other devices get
    the float32 additive dense mask: flex_attention has no CPU backward in torch, so
    training there goes through SDPA (float32 is the CPU compute dtype; attention casts
    the mask to another compute dtype once per layer).
    """
    if document_ids.device.type == "cuda":
        return block_causal_block_mask(document_ids)
    return block_causal_additive_mask(document_ids)
