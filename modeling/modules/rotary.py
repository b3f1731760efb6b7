"""Rotary positional embeddings (RoPE) in Meta's interleaved layout.

Channel pairs ``(2i, 2i+1)`` of each head are rotated together, as in Meta's reference
code and checkpoints. Hugging Face checkpoints store q/k projections permuted for a
"rotate half" layout; the key maps undo that permutation on load (see
``modeling.convert.hf_to_interleaved``), so the model itself has one layout only.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3.1 frequency scaling: stretch low frequencies for longer contexts.

    Attributes mirror the ``rope_scaling`` block of a Llama 3.1 ``config.json``.
    """

    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_seq_len: int = 8192

    def apply(self, freqs: torch.Tensor) -> torch.Tensor:
        """Return ``freqs`` (inverse wavelengths) rescaled band by band."""
        low_wavelen = self.original_max_seq_len / self.low_freq_factor
        high_wavelen = self.original_max_seq_len / self.high_freq_factor
        wavelen = 2 * math.pi / freqs
        smooth = (self.original_max_seq_len / wavelen - self.low_freq_factor) / (
            self.high_freq_factor - self.low_freq_factor
        )
        blended = (1 - smooth) * freqs / self.factor + smooth * freqs
        scaled = torch.where(wavelen > low_wavelen, freqs / self.factor, freqs)
        middle = (wavelen <= low_wavelen) & (wavelen >= high_wavelen)
        return torch.where(middle, blended, scaled)


class RotaryPositionalEmbeddings(nn.Module):
    """Rotates query/key channel pairs by position-dependent angles.

    Args:
        dim: Head dimension (even).
        max_seq_len: Positions for which cos/sin are cached.
        base: The rotary base (``rope_theta``): 10000 for Llama 2, 500000 for Llama 3.
        scaling: Optional Llama 3.1 frequency scaling.
    """

    def __init__(
        self,
        dim: int,
        max_seq_len: int = 4096,
        base: float = 10_000.0,
        scaling: RopeScaling | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.max_seq_len = max_seq_len
        self.base = base
        self.scaling = scaling
        self.register_buffer("cos", torch.empty(max_seq_len, dim // 2), persistent=False)
        self.register_buffer("sin", torch.empty(max_seq_len, dim // 2), persistent=False)
        self.reset_cache()

    def reset_cache(self) -> None:
        """(Re)compute the cos/sin tables, e.g. after ``to_empty`` off the meta device."""
        if self.cos.is_meta:
            return
        device = self.cos.device
        freqs = 1.0 / (
            self.base
            ** (torch.arange(0, self.dim, 2, device=device, dtype=torch.float64) / self.dim)
        )
        if self.scaling is not None:
            freqs = self.scaling.apply(freqs)
        positions = torch.arange(self.max_seq_len, device=device, dtype=torch.float64)
        angles = torch.outer(positions, freqs)
        self.cos.copy_(angles.cos())
        self.sin.copy_(angles.sin())

    def forward(self, x: torch.Tensor, input_pos: torch.Tensor | None = None) -> torch.Tensor:
        """Rotate ``x`` of shape ``[batch, seq, heads, head_dim]``.

        Args:
            x: Queries or keys.
            input_pos: Positions ``[batch, seq]`` or ``[seq]``; ``0..seq-1`` when omitted.
                Packed sequences pass per-document positions here.
        """
        seq_len = x.shape[1]
        if input_pos is None:
            cos, sin = self.cos[:seq_len], self.sin[:seq_len]  # [s, d/2]
        else:
            cos, sin = self.cos[input_pos], self.sin[input_pos]  # [(b,) s, d/2]
        # Each channel pair is a complex number; rotating it is one complex multiply
        # (4x faster than real arithmetic with stack on CPU), computed in float32.
        rotation = torch.complex(cos.float(), sin.float()).unsqueeze(-2)  # over heads
        pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(pairs * rotation).flatten(-2).type_as(x)
