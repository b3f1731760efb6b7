"""Gated feed-forward blocks: SwiGLU (Llama, Mistral, Phi-3) and tanh-GELU (Gemma)."""

from collections.abc import Callable

import torch
from torch import nn


class GatedMLP(nn.Module):
    """``w2(activation(w1(x)) * w3(x))``: the gated MLP of every supported family.

    Args:
        w1: Gate projection ``embed_dim -> hidden_dim``.
        w2: Down projection ``hidden_dim -> embed_dim``.
        w3: Up projection ``embed_dim -> hidden_dim``.
        activation: Applied to the gate: SiLU for SwiGLU, tanh-approximated GELU for Gemma.
    """

    def __init__(
        self,
        *,
        w1: nn.Module,
        w2: nn.Module,
        w3: nn.Module,
        activation: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        super().__init__()
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the gated MLP to ``x`` of shape ``[..., embed_dim]``."""
        return self.w2(self.activation(self.w1(x)) * self.w3(x))
