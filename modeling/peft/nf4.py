"""Frozen NF4 weight storage through bitsandbytes, for QLoRA.

The base weight of a QLoRA layer is kept as bitsandbytes 4-bit NormalFloat: one packed
``uint8`` per two weights plus one float32 absmax per block of ``BLOCKSIZE`` weights, i.e.
4.5 bits per parameter. It is dequantised on the fly in the forward pass and never
receives gradients. In state dicts it appears as an ordinary dense ``weight``, so
checkpoints, merges and exports never see the packed form: registered as a module
attribute ``weight``, it saves itself under the parent's ``weight`` key, and the parent
loads it through :meth:`NF4Weight.load_dense`.
"""

import logging
import math

import torch
from torch import nn

# bitsandbytes warns at import when an optional CPU kernel package is absent; the plain
# CPU path it falls back to is the one we use, so the warning is noise for our users.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
import bitsandbytes.functional as bnbf  # noqa: E402

BLOCKSIZE = 64


class NF4Weight(nn.Module):
    """A frozen ``[out_dim, in_dim]`` weight stored as NF4.

    Args:
        out_dim: Rows of the dense weight.
        in_dim: Columns of the dense weight.
        dtype: The dtype the weight dequantises to (the model's compute dtype).
        device: Where the packed buffers live; ``meta`` defers quantisation to loading.
    """

    def __init__(
        self,
        out_dim: int,
        in_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.shape = torch.Size((out_dim, in_dim))
        self.dtype = dtype
        numel = out_dim * in_dim
        packed = torch.zeros(math.ceil(numel / 2), 1, dtype=torch.uint8, device=device)
        absmax = torch.zeros(math.ceil(numel / BLOCKSIZE), dtype=torch.float32, device=device)
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("absmax", absmax, persistent=False)

    @torch.no_grad()
    def quantize_(self, weight: torch.Tensor) -> None:
        """Replace the stored weight with ``weight`` (dense, same shape), quantised."""
        if weight.shape != self.shape:
            raise ValueError(
                f"NF4 weight expects shape {tuple(self.shape)}, got {tuple(weight.shape)}"
            )
        if weight.is_meta:
            return
        device = self.packed.device if not self.packed.is_meta else weight.device
        dense = weight.to(device=device, dtype=self.dtype).contiguous()
        packed, state = bnbf.quantize_4bit(dense, blocksize=BLOCKSIZE, quant_type="nf4")
        self.packed = packed
        self.absmax = state.absmax.float()

    def dequantize(self) -> torch.Tensor:
        """The dense weight, dequantised (no autograd history)."""
        state = bnbf.QuantState(
            absmax=self.absmax,
            shape=self.shape,
            code=_nf4_code(self.absmax.device),
            blocksize=BLOCKSIZE,
            quant_type="nf4",
            dtype=self.dtype,
        )
        with torch.no_grad():
            return bnbf.dequantize_4bit(self.packed, state)

    def nbytes(self) -> int:
        """Bytes of storage this weight occupies (packed values plus absmax)."""
        return self.packed.nbytes + self.absmax.nbytes

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # noqa: D102
        destination[prefix[:-1]] = self.dequantize()

    def load_dense(
        self,
        state_dict: dict,
        key: str,
        missing_keys: list[str],
        unexpected_keys: list[str],
    ) -> None:
        """Quantise ``state_dict[key]`` into this weight; the owning module calls this.

        A module's own ``_load_from_state_dict`` only sees keys under its prefix, so the
        parent (whose ``weight`` key this is) loads it on our behalf.
        """
        if key in state_dict:
            self.quantize_(state_dict[key])
            if key in unexpected_keys:
                unexpected_keys.remove(key)
        else:
            missing_keys.append(key)

    def extra_repr(self) -> str:  # noqa: D102
        return f"shape={tuple(self.shape)}, dtype={self.dtype}, blocksize={BLOCKSIZE}"


_CODES: dict[torch.device, torch.Tensor] = {}


def _nf4_code(device: torch.device) -> torch.Tensor:
    """The 16 NF4 levels, cached per device."""
    if device not in _CODES:
        _CODES[device] = bnbf.get_4bit_type("nf4", device=device)
    return _CODES[device]
