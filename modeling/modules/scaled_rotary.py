"""Llama 3.1-style scaled RoPE, shared by Llama 3.1, 3.2 and 3.3.

Meta's Llama 3.1 stretches the low rotary frequencies by ``scale_factor`` (8 for 3.1 and
3.3, 32 for 3.2), leaves the high ones alone and blends the band in between, so that a
model trained at 8192 tokens reads 128K. :class:`~modeling.modules.rotary.RopeScaling`
holds that rule; this file gives it torchtune's names: :class:`Llama3ScaledRoPE` with
torchtune's arguments, and :func:`llama3_rope_scaling` for the family builders.
"""

from modeling.modules.rotary import RopeScaling, RotaryPositionalEmbeddings


def llama3_rope_scaling(
    scale_factor: float = 8.0,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
    old_context_len: int = 8192,
) -> RopeScaling:
    """The ``rope_scaling`` block of a Llama 3.1/3.2/3.3 ``config.json`` as a RopeScaling.

    Args:
        scale_factor: How much the low frequencies are stretched (``factor``).
        low_freq_factor: Wavelengths above ``old_context_len / low_freq_factor`` are
            fully scaled.
        high_freq_factor: Wavelengths below ``old_context_len / high_freq_factor`` are
            kept as they are.
        old_context_len: The pre-training context (``original_max_position_embeddings``).

    Raises:
        ValueError: Naming the argument, for non-positive values or
            ``high_freq_factor <= low_freq_factor`` (the blend divides by their difference).
    """
    for name, value in (
        ("scale_factor", scale_factor),
        ("low_freq_factor", low_freq_factor),
        ("high_freq_factor", high_freq_factor),
        ("old_context_len", old_context_len),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if high_freq_factor <= low_freq_factor:
        raise ValueError(
            f"high_freq_factor={high_freq_factor} must exceed low_freq_factor="
            f"{low_freq_factor} (Meta's Llama 3.1 values are 4 and 1)"
        )
    return RopeScaling(
        factor=float(scale_factor),
        low_freq_factor=float(low_freq_factor),
        high_freq_factor=float(high_freq_factor),
        original_max_seq_len=int(old_context_len),
    )


class Llama3ScaledRoPE(RotaryPositionalEmbeddings):
    """Rotary embeddings with Llama 3.1 frequency scaling (torchtune's ``Llama3ScaledRoPE``).

    The same module as ``RotaryPositionalEmbeddings(..., scaling=llama3_rope_scaling(...))``
    (Meta's interleaved channel pairs), built from torchtune's argument names.

    Args:
        dim: Head dimension (even).
        max_seq_len: Positions for which cos/sin are cached.
        base: The rotary base (``rope_theta``).
        scale_factor: Low-frequency stretch (8 for Llama 3.1/3.3, 32 for 3.2).
        low_freq_factor: See :func:`llama3_rope_scaling`.
        high_freq_factor: See :func:`llama3_rope_scaling`.
        old_context_len: See :func:`llama3_rope_scaling`.
    """

    def __init__(
        self,
        dim: int,
        max_seq_len: int = 4096,
        base: float = 10_000.0,
        scale_factor: float = 8.0,
        low_freq_factor: float = 1.0,
        high_freq_factor: float = 4.0,
        old_context_len: int = 8192,
    ) -> None:
        super().__init__(
            dim,
            max_seq_len=max_seq_len,
            base=base,
            scaling=llama3_rope_scaling(
                scale_factor, low_freq_factor, high_freq_factor, old_context_len
            ),
        )
