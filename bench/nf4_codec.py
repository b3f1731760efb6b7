"""NF4 quantise and dequantise: our plain-PyTorch codec next to bitsandbytes' on this machine.

Both give the same bytes and values (``tests/modeling/test_nf4_codec.py``); this times
them on one ``--rows`` x ``--cols`` weight in each dtype, best of ``--repeats``, and prints
a JSON list. bitsandbytes is a test dependency only; without it, only ours is timed.

    python -m bench.nf4_codec [--rows 4096 --cols 4096 --repeats 7]
"""

import argparse
import json
import logging
import time

import torch

from modeling.peft.nf4_codec import dequantize_nf4, quantize_nf4

BLOCKSIZE = 64


def best_seconds(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bitsandbytes_functions(dtype: torch.dtype, numel: int):
    """``(quantize, dequantize)`` through bitsandbytes, or None when it is not installed."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    try:
        import bitsandbytes.functional as bnbf
    except ImportError:
        return None

    def quantize(weight):
        return bnbf.quantize_4bit(weight, blocksize=BLOCKSIZE, quant_type="nf4")

    def dequantize(packed, absmax):
        state = bnbf.QuantState(
            absmax=absmax,
            shape=torch.Size((numel // BLOCKSIZE, BLOCKSIZE)),
            code=bnbf.get_4bit_type("nf4", device="cpu"),
            blocksize=BLOCKSIZE,
            quant_type="nf4",
            dtype=dtype,
        )
        return bnbf.dequantize_4bit(packed, state)

    return quantize, dequantize


def time_dtype(dtype: torch.dtype, args: argparse.Namespace) -> dict:
    """Milliseconds per quantise and dequantise of one weight in ``dtype``, both codecs."""
    weight = torch.randn(args.rows, args.cols).to(dtype)
    numel = weight.numel()
    packed, absmax = quantize_nf4(weight, BLOCKSIZE)
    row = {
        "shape": f"{args.rows}x{args.cols}",
        "dtype": str(dtype).removeprefix("torch."),
        "ours_quantize_ms": best_seconds(lambda: quantize_nf4(weight, BLOCKSIZE), args.repeats),
        "ours_dequantize_ms": best_seconds(
            lambda: dequantize_nf4(packed, absmax, numel, BLOCKSIZE, dtype), args.repeats
        ),
    }
    reference = bitsandbytes_functions(dtype, numel)
    if reference:
        quantize, dequantize = reference
        row["bitsandbytes_quantize_ms"] = best_seconds(lambda: quantize(weight), args.repeats)
        row["bitsandbytes_dequantize_ms"] = best_seconds(
            lambda: dequantize(packed, absmax), args.repeats
        )
    return {k: round(1e3 * v, 1) if k.endswith("_ms") else v for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = [time_dtype(dtype, args) for dtype in (torch.bfloat16, torch.float32)]
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
