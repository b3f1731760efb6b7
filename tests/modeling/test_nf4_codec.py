"""The plain-PyTorch NF4 codec gives bitsandbytes' bytes and values (bitsandbytes is the
reference here, a test dependency only), in slices or in one pass, and rounds as NF4 should."""

import logging

import bitsandbytes.functional as bnbf
import pytest
import torch

from modeling.peft import nf4_codec
from modeling.peft.nf4_codec import NF4_LEVELS, dequantize_nf4, quantize_nf4

logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

BLOCKSIZE = 64
SHAPES = [(64, 64), (33, 100), (1, 65), (7, 9), (1, 1), (3, 64), (130, 96)]


def _reference(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """bitsandbytes' packed bytes, absmax and dequantised values for ``weight``."""
    packed, state = bnbf.quantize_4bit(weight, blocksize=BLOCKSIZE, quant_type="nf4")
    n = weight.numel()
    # bitsandbytes 0.50's CPU dequantise is right only for rows of whole blocks.
    flat = (n // BLOCKSIZE, BLOCKSIZE) if n % BLOCKSIZE == 0 else (n,)
    state = bnbf.QuantState(
        absmax=state.absmax,
        shape=torch.Size(flat),
        code=bnbf.get_4bit_type("nf4", device="cpu"),
        blocksize=BLOCKSIZE,
        quant_type="nf4",
        dtype=weight.dtype,
    )
    return packed, state.absmax.float(), bnbf.dequantize_4bit(packed, state).reshape(-1)


def _weight(shape, dtype, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=generator).to(dtype)
    weight.view(-1)[:BLOCKSIZE] = 0  # an all-zero block (absmax 0)
    return weight


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_bytes_and_values_equal_bitsandbytes(shape, dtype):
    weight = _weight(shape, dtype)
    ref_packed, ref_absmax, ref_values = _reference(weight)
    packed, absmax = quantize_nf4(weight, BLOCKSIZE)
    assert torch.equal(packed, ref_packed)
    assert torch.equal(absmax, ref_absmax)
    values = dequantize_nf4(packed, absmax, weight.numel(), BLOCKSIZE, dtype)
    assert values.dtype == dtype
    assert torch.equal(values, ref_values)


def test_many_slices_equal_one_pass(monkeypatch):
    weight = _weight((257, 100), torch.bfloat16, seed=1)  # partial last block, odd count
    one_pass = quantize_nf4(weight, BLOCKSIZE)
    monkeypatch.setattr(nf4_codec, "CPU_SLICE_VALUES", 2 * BLOCKSIZE)
    sliced = quantize_nf4(weight, BLOCKSIZE)
    assert all(torch.equal(a, b) for a, b in zip(one_pass, sliced, strict=True))
    values = dequantize_nf4(*sliced, weight.numel(), BLOCKSIZE, torch.bfloat16)
    assert torch.equal(values, _reference(weight)[2])


def test_midpoints_round_down_like_bitsandbytes():
    """A value exactly between two levels takes the lower one, on both implementations."""
    levels = torch.tensor(NF4_LEVELS)
    middles = (levels[:-1] + levels[1:]) / 2
    weight = torch.cat([torch.ones(1), middles, levels])  # absmax 1: scaling is exact
    weight = torch.cat([weight, torch.zeros(2 * BLOCKSIZE - weight.numel())])
    packed, absmax = quantize_nf4(weight, BLOCKSIZE)
    assert torch.equal(packed, _reference(weight)[0])
    values = dequantize_nf4(packed, absmax, weight.numel(), BLOCKSIZE, torch.float32)
    assert torch.equal(values[1:16], levels[:-1])  # each midpoint went to the lower level
    assert torch.equal(values[16:32], levels)  # the levels themselves are exact


def test_error_is_at_most_half_the_widest_gap_times_absmax():
    weight = torch.randn(300, 64) * torch.logspace(-4, 2, 300)[:, None]  # scales apart
    packed, absmax = quantize_nf4(weight, BLOCKSIZE)
    values = dequantize_nf4(packed, absmax, weight.numel(), BLOCKSIZE, torch.float32)
    widest = max(b - a for a, b in zip(NF4_LEVELS[:-1], NF4_LEVELS[1:], strict=True)) / 2
    error = (values.view(-1, BLOCKSIZE) - weight.view(-1, BLOCKSIZE)).abs().amax(dim=1)
    assert torch.all(error <= widest * absmax * (1 + 1e-6))
    assert torch.equal(absmax, weight.view(-1, BLOCKSIZE).abs().amax(dim=1))
