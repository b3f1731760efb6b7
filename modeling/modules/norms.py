"""RMSNorm, in Llama's form and in Gemma's ``1 + weight`` form."""

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square layer norm, computed in float32 and cast back.

    Args:
        dim: Size of the normalised (last) dimension.
        eps: Added to the mean square before the reciprocal square root.
        unit_offset: Scale by ``1 + scale`` instead of ``scale``, as Gemma stores its norms.
            The stored ``scale`` then starts at zero so a fresh norm is the identity scale.
    """

    def __init__(self, dim: int, eps: float = 1e-6, unit_offset: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.unit_offset = unit_offset
        self.scale = nn.Parameter(torch.zeros(dim) if unit_offset else torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` over its last dimension."""
        weight = self.scale.float() + 1.0 if self.unit_offset else self.scale.float()
        out = F.rms_norm(x.float(), (x.shape[-1],), weight, self.eps)
        return out.to(x.dtype)
