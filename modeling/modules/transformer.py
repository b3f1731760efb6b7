"""Pre-norm decoder layer and the decoder that stacks them."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import BlockMask

from modeling.modules.attention import MultiHeadAttention
from modeling.modules.kv_cache import KVCache


class TransformerDecoderLayer(nn.Module):
    """``x + attn(sa_norm(x))`` followed by ``h + mlp(mlp_norm(h))``."""

    def __init__(
        self,
        *,
        attn: MultiHeadAttention,
        mlp: nn.Module,
        sa_norm: nn.Module,
        mlp_norm: nn.Module,
    ) -> None:
        super().__init__()
        self.attn = attn
        self.mlp = mlp
        self.sa_norm = sa_norm
        self.mlp_norm = mlp_norm

    def forward(
        self,
        x: torch.Tensor,
        *,
        mask: torch.Tensor | BlockMask | None = None,
        input_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run one decoder block on ``x`` of shape ``[batch, seq, embed_dim]``."""
        h = x + self.attn(self.sa_norm(x), mask=mask, input_pos=input_pos)
        return h + self.mlp(self.mlp_norm(h))


class TransformerDecoder(nn.Module):
    """Token embedding, decoder layers, final norm and output projection.

    Args:
        tok_embeddings: ``vocab_size -> embed_dim`` embedding.
        layers: The decoder layers, applied in order.
        norm: Final norm before the output projection.
        output: ``embed_dim -> vocab_size`` projection, or None to tie it to the
            embedding (Gemma).
        max_seq_len: Longest sequence the rotary tables cover.
        embed_scale: Multiplies the embeddings (Gemma scales by sqrt(embed_dim)).
    """

    def __init__(
        self,
        *,
        tok_embeddings: nn.Embedding,
        layers: nn.ModuleList,
        norm: nn.Module,
        output: nn.Module | None,
        max_seq_len: int,
        embed_scale: float | None = None,
    ) -> None:
        super().__init__()
        self.tok_embeddings = tok_embeddings
        self.layers = layers
        self.norm = norm
        self.output = output
        self.max_seq_len = max_seq_len
        self.embed_scale = embed_scale

    def setup_caches(
        self,
        batch_size: int,
        dtype: torch.dtype | None = None,
        max_seq_len: int | None = None,
    ) -> None:
        """Give every attention layer a KV cache for incremental decoding."""
        param = self.tok_embeddings.weight
        for layer in self.layers:
            attn = layer.attn
            attn.kv_cache = KVCache(
                batch_size,
                max_seq_len or self.max_seq_len,
                attn.num_kv_heads,
                attn.head_dim,
                dtype=dtype or param.dtype,
                device=param.device,
            )

    def caches_are_enabled(self) -> bool:
        """Whether ``setup_caches`` has been called (and caches not removed)."""
        return self.layers[0].attn.kv_cache is not None

    def reset_caches(self) -> None:
        """Empty every KV cache so decoding starts again at position 0."""
        for layer in self.layers:
            layer.attn.kv_cache.reset()

    def remove_caches(self) -> None:
        """Drop the KV caches and return to full-sequence forward passes."""
        for layer in self.layers:
            layer.attn.kv_cache = None

    def hidden_states(
        self,
        tokens: torch.Tensor,
        *,
        mask: torch.Tensor | BlockMask | None = None,
        input_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final normed hidden states ``[batch, seq, embed_dim]``, before the projection."""
        h = self.tok_embeddings(tokens)
        if self.embed_scale is not None:
            h = h * torch.tensor(self.embed_scale, dtype=h.dtype)
        for layer in self.layers:
            h = layer(h, mask=mask, input_pos=input_pos)
        return self.norm(h)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """Map hidden states to vocabulary logits (tied to the embedding when no output)."""
        if self.output is None:
            return F.linear(h, self.tok_embeddings.weight)
        return self.output(h)

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        mask: torch.Tensor | BlockMask | None = None,
        input_pos: torch.Tensor | None = None,
        output_mask: torch.Tensor | None = None,
        output_chunks: int | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Logits ``[batch, seq, vocab_size]`` for ``tokens`` of shape ``[batch, seq]``.

        Args:
            tokens: Token ids.
            mask: Optional attention mask of a packed batch, shared by every layer: a
                ``[batch, seq, seq]`` tensor, boolean (True = attend) or additive (0 or
                -inf), or a flex_attention ``BlockMask``
                (``modeling.modules.attention_masks.packed_attention_mask`` builds the one
                suited to the device from per-token document ids).
            input_pos: Optional ``[batch, seq]`` positions, e.g. per document when packed.
            output_mask: Optional boolean ``[batch, seq]``: compute logits only where True
                and return them as ``[n_true, vocab_size]``. Fine-tuning needs no logits
                for prompt or padding positions, and the vocabulary projection is often
                the largest matmul of the model.
            output_chunks: Return the logits as this many chunks along the sequence (or
                selected-position) dimension, each projected on its own, as torchtune's
                ``set_num_output_chunks`` does: a chunked loss then never needs the whole
                logits tensor, and backward never concatenates its gradient.
        """
        h = self.hidden_states(tokens, mask=mask, input_pos=input_pos)
        if output_mask is not None:
            h = h[output_mask]
        if output_chunks is None:
            return self.project(h)
        # Exactly ``output_chunks`` pieces (some maybe empty), so every rank makes as many
        # projections, each a collective when the output weight is sharded NF4.
        pieces = torch.tensor_split(h, output_chunks, dim=h.dim() - 2)
        return [self.project(piece) for piece in pieces]
