"""NF4 (4-bit NormalFloat) blockwise quantisation in plain PyTorch, on any device.

NF4 is QLoRA's data type (Dettmers et al., 2023): 16 levels placed at the quantiles of a
standard normal, scaled to [-1, 1]. A weight is cut into blocks of ``blocksize``
consecutive values (over the flattened weight); each block keeps its absolute maximum as
a float32 scale and each value the index of the level nearest to ``value / absmax``; two
4-bit indices share a byte, the first in the high nibble.

The arithmetic is bitsandbytes' (its reference ``quantize_4bit`` / ``dequantize_4bit``
with ``quant_type="nf4"``, no nested statistics): the reciprocal of the absmax times the
value, clamped to [-1, 1], bucketed at the midpoints between levels; dequantised values
are level times absmax in float32, rounded once to the target dtype. The bytes therefore
equal bitsandbytes' own, which ``tests/modeling/test_nf4_codec.py`` checks against it,
yet nothing here needs bitsandbytes or a compiled kernel: the same code runs on CPU, CUDA
or any other torch device, and gives the same bytes on each.

Both directions work through the weight in slices, so the float32 temporaries stay
bounded however large the weight is: slices of about a million values on the CPU, where
a slice that stays in cache measured twice as fast as one pass, and of 64 Mi values on
accelerators, where each slice costs kernel launches (a 70B projection takes four).
"""

import math

import torch

# The 16 NF4 levels, in index order (QLoRA, appendix E; bitsandbytes' ``get_4bit_type``).
NF4_LEVELS = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)
# Values per slice of work (multiples of any power-of-two blocksize), by device type.
CPU_SLICE_VALUES = 1 << 20
ACCELERATOR_SLICE_VALUES = 1 << 26


def quantize_nf4(values: torch.Tensor, blocksize: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise ``values`` (any shape, read flattened) to NF4, where they are.

    Args:
        values: The dense weight, any floating dtype.
        blocksize: Values per scale; a power of two. Only the last block may be partial.

    Returns:
        ``(packed, absmax)``: ``uint8`` of shape ``[ceil(n / 2), 1]`` (bitsandbytes'
        layout) and one float32 absmax per block, both on ``values``' device.
    """
    flat = values.reshape(-1)
    n = flat.numel()
    packed = torch.empty(math.ceil(n / 2), 1, dtype=torch.uint8, device=flat.device)
    absmax = torch.empty(math.ceil(n / blocksize), dtype=torch.float32, device=flat.device)
    bounds = _midpoints(flat.device)
    full, step = n - n % blocksize, _slice_values(flat.device)
    for start in range(0, full, step):
        stop = min(start + step, full)
        blocks = flat[start:stop].float().view(-1, blocksize)
        scale = blocks.abs().amax(dim=1)
        absmax[start // blocksize : stop // blocksize] = scale
        scaled = blocks * (1.0 / scale.clamp(min=1e-38))[:, None]
        packed[start // 2 : stop // 2, 0] = _pack(scaled.clamp_(-1, 1).view(-1), bounds)
    if full < n:  # the partial last block: divided by its absmax, as bitsandbytes does
        tail = flat[full:].float()
        scale = tail.abs().amax().clamp(min=1e-38)
        absmax[-1] = scale
        scaled = (tail / scale).clamp_(-1, 1)
        if scaled.numel() % 2:  # a lone last value shares its byte with a zero
            scaled = torch.cat([scaled, scaled.new_zeros(1)])
        packed[full // 2 :, 0] = _pack(scaled, bounds)
    return packed, absmax


def dequantize_nf4(
    packed: torch.Tensor, absmax: torch.Tensor, numel: int, blocksize: int, dtype: torch.dtype
) -> torch.Tensor:
    """The ``numel`` values that :func:`quantize_nf4` packed, flat, in ``dtype``.

    Each byte is looked up whole in a 256-entry table of level pairs, so one gather gives
    both of its values; the float32 products with the block's absmax are rounded to
    ``dtype`` once.

    Args:
        packed: The packed indices (any shape; read flattened).
        absmax: One float32 scale per block.
        numel: Values to return (the odd last nibble of an odd count is padding).
        blocksize: Values per scale, as quantised.
        dtype: The dtype of the result.

    Returns:
        A flat tensor of ``numel`` values on ``packed``'s device.
    """
    codes = packed.reshape(-1)
    table = _byte_table(codes.device)
    out = torch.empty(numel, dtype=dtype, device=codes.device)
    full, step = numel - numel % blocksize, _slice_values(codes.device)
    for start in range(0, full, step):
        stop = min(start + step, full)
        levels = table.index_select(0, codes[start // 2 : stop // 2].int())
        levels = levels.view(-1, blocksize).mul_(
            absmax[start // blocksize : stop // blocksize, None]
        )
        out[start:stop] = levels.view(-1)
    if full < numel:
        levels = table.index_select(0, codes[full // 2 :].int()).view(-1)[: numel - full]
        out[full:] = levels.mul_(absmax[-1])
    return out


_MIDPOINTS: dict[torch.device, torch.Tensor] = {}
_BYTE_TABLES: dict[torch.device, torch.Tensor] = {}


def _slice_values(device: torch.device) -> int:
    return CPU_SLICE_VALUES if device.type == "cpu" else ACCELERATOR_SLICE_VALUES


def _levels(device: torch.device) -> torch.Tensor:
    return torch.tensor(NF4_LEVELS, dtype=torch.float32, device=device)


def _midpoints(device: torch.device) -> torch.Tensor:
    """The 15 float32 boundaries between neighbouring levels, cached per device."""
    if device not in _MIDPOINTS:
        levels = _levels(device)
        _MIDPOINTS[device] = (levels[:-1] + levels[1:]) / 2
    return _MIDPOINTS[device]


def _byte_table(device: torch.device) -> torch.Tensor:
    """``[256, 2]`` float32: the levels of a byte's high and low nibble, cached per device."""
    if device not in _BYTE_TABLES:
        levels = _levels(device)
        byte = torch.arange(256, device=device)
        _BYTE_TABLES[device] = torch.stack([levels[byte >> 4], levels[byte & 15]], dim=1)
    return _BYTE_TABLES[device]


def _pack(scaled: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Nearest-level indices of an even number of scaled values, two per byte.

    A value exactly on a midpoint takes the lower level (``bucketize``'s left side).
    """
    index = torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8)
    return (index[0::2] << 4) | index[1::2]
