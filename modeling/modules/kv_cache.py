"""Key/value cache for incremental decoding."""

import torch
from torch import nn


class KVCache(nn.Module):
    """Holds past keys and values of one attention layer.

    Positions are shared across the batch: every row has decoded the same number of
    tokens, which is what batched greedy or sampled generation needs.

    Args:
        batch_size: Rows decoded together.
        max_seq_len: Most positions the cache can hold.
        num_kv_heads: Key/value heads.
        head_dim: Channels per head.
        dtype: Cache dtype, normally the model's.
    """

    def __init__(
        self,
        batch_size: int,
        max_seq_len: int,
        num_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        shape = (batch_size, num_kv_heads, max_seq_len, head_dim)
        self.register_buffer(
            "k_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False
        )
        self.register_buffer(
            "v_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False
        )
        self.size = 0

    def reset(self) -> None:
        """Forget everything cached; the next update starts at position 0."""
        self.k_cache.zero_()
        self.v_cache.zero_()
        self.size = 0

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k``/``v`` (``[batch, kv_heads, seq, head_dim]``) and return all cached.

        Raises:
            ValueError: If the new tokens would overflow ``max_seq_len``.
        """
        seq_len = k.shape[2]
        end = self.size + seq_len
        if end > self.k_cache.shape[2]:
            raise ValueError(
                f"KV cache overflow: {end} positions needed but the cache holds "
                f"{self.k_cache.shape[2]}; call setup_caches with a larger max_seq_len."
            )
        self.k_cache[:, :, self.size : end] = k
        self.v_cache[:, :, self.size : end] = v
        self.size = end
        return self.k_cache[:, :, :end], self.v_cache[:, :, :end]
