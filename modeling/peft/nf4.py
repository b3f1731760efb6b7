"""Frozen NF4 weight storage for QLoRA, optionally sharded by rows.

The base weight of a QLoRA layer is kept as 4-bit NormalFloat (:mod:`modeling.peft.nf4_codec`,
in bitsandbytes' byte layout): one packed ``uint8`` per two weights plus one float32
absmax per block of ``BLOCKSIZE`` weights, i.e. 4.5 bits per parameter. It is dequantised
on the fly, never receives gradients, and goes through :func:`linear_nf4`, whose backward
dequantises again instead of keeping the dense weight alive between forward and backward.

Under FSDP2 (:func:`modeling.sharding.shard_decoder`) each rank keeps only its own rows
(:meth:`NF4Weight.shard_`) and gathers the packed bytes of the others when it dequantises,
as torchtune shards its ``NF4Tensor``. In state dicts it appears as an ordinary dense
``weight`` in the dtype the model was built in, so checkpoints, merges and exports never
see the packed form: registered as a module attribute ``weight``, it saves itself under
the parent's ``weight`` key, and the parent loads it through :meth:`NF4Weight.load_dense`.

Under FSDP2's CPU offload (:meth:`NF4Weight.offload_`) the packed bytes stay in host
memory and are copied to the compute device only while a projection is gathered and
dequantised, so a GPU holds one projection's NF4 bytes at a time, not its share of the base.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from modeling.peft.nf4_codec import dequantize_nf4, quantize_nf4

BLOCKSIZE = 64
# torch 2.13 renames all_gather_into_tensor (deprecated there) to all_gather_single.
_ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def shard_rows(out_dim: int, in_dim: int, world_size: int) -> int:
    """Rows each of ``world_size`` shards of an ``[out_dim, in_dim]`` NF4 weight holds.

    NF4 quantises the flattened weight in blocks of ``BLOCKSIZE`` values, so a
    shard boundary must fall on a block boundary for the shards' bytes to be exactly the
    1-rank bytes cut in pieces. A shard starting at row ``r`` starts at value
    ``r * in_dim``, a multiple of ``BLOCKSIZE`` whenever ``r`` is a multiple of
    ``BLOCKSIZE / gcd(in_dim, BLOCKSIZE)``: rows per shard are ``ceil(out_dim / world)``
    rounded up to that. Only the last block of the whole weight may be partial, as on one
    rank. The last shards may hold fewer rows, or none, when the rounding leaves them few.
    """
    align = BLOCKSIZE // math.gcd(in_dim, BLOCKSIZE)
    even = math.ceil(out_dim / world_size)
    return math.ceil(even / align) * align


class NF4Weight(nn.Module):
    """A frozen ``[out_dim, in_dim]`` weight stored as NF4, whole or as this rank's rows.

    Args:
        out_dim: Rows of the dense weight.
        in_dim: Columns of the dense weight.
        dtype: The dtype the weight dequantises to; the default dtype when None, so a
            model built in bf16 (``build_on_meta``) gives bf16 weights and state dicts.
        device: Where the packed buffers live; ``meta`` defers quantisation to loading.

    Attributes:
        compute_device: Where the weight is dequantised when its storage is offloaded to
            host memory (:meth:`offload_`); None computes where the buffers are.
    """

    def __init__(
        self,
        out_dim: int,
        in_dim: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.shape = torch.Size((out_dim, in_dim))
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()
        self.rows = (0, out_dim)  # the rows this rank holds
        self.group: dist.ProcessGroup | None = None  # set when sharded over >1 ranks
        self.world_size = 1
        self.rows_per_shard = out_dim
        self.in_state_dict = True  # False while frozen weights are left out of a save
        self.compute_device: torch.device | None = None
        packed, absmax = _empty_buffers(out_dim * in_dim, device)
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("absmax", absmax, persistent=False)

    @property
    def is_sharded(self) -> bool:
        """Whether the rows are split over several ranks."""
        return self.group is not None

    @property
    def is_offloaded(self) -> bool:
        """Whether the storage is kept in host memory apart from the compute device."""
        return self.compute_device is not None

    def offload_(self, compute_device: torch.device | str) -> None:
        """Keep the packed bytes and absmax in host memory and compute on ``compute_device``.

        FSDP2's ``CPUOffloadPolicy`` moves parameters only, and NF4 bases are buffers:
        this is their offload. Host storage is pinned when ``compute_device`` is a CUDA
        device, so :meth:`dequantize` copies this rank's rows asynchronously, and only
        while it uses them. On ``meta`` only the compute device is recorded:
        :func:`modeling.sharding.materialize` then allocates the buffers on the host, and
        loading (:meth:`quantize_rows_`) quantises on the compute device and stores the
        result, pinned, on the host.

        Args:
            compute_device: Where the weight is gathered and dequantised.
        """
        self.compute_device = torch.device(compute_device)
        if not self.packed.is_meta:
            self.packed, self.absmax = self._host(self.packed), self._host(self.absmax)

    def shard_(self, group: dist.ProcessGroup, rank: int, world_size: int) -> None:
        """Keep only this rank's rows of the weight (see :func:`shard_rows` for which).

        On ``meta`` the buffers are resized for loading; a quantised weight keeps its own
        bytes, which equal those of quantising its rows alone. One rank changes nothing.

        Args:
            group: The process group the rows are sharded over (FSDP's shard dimension).
            rank: This rank's index in ``group``.
            world_size: Ranks in ``group``.
        """
        if self.is_sharded:
            raise RuntimeError(f"NF4 weight {tuple(self.shape)} is already sharded")
        if world_size == 1:
            return
        out_dim, in_dim = self.shape
        per_shard = shard_rows(out_dim, in_dim, world_size)
        start = min(rank * per_shard, out_dim)
        stop = min(start + per_shard, out_dim)
        if self.packed.is_meta or start == stop:
            packed, absmax = _empty_buffers((stop - start) * in_dim, self.packed.device)
        else:
            packed = self.packed[start * in_dim // 2 : math.ceil(stop * in_dim / 2)].clone()
            absmax = self.absmax[start * in_dim // BLOCKSIZE : _blocks(stop * in_dim)].clone()
            if self.is_offloaded:  # a clone of pinned memory is not pinned
                packed, absmax = self._host(packed), self._host(absmax)
        self.packed, self.absmax = packed, absmax
        self.rows, self.rows_per_shard = (start, stop), per_shard
        self.group, self.world_size = group, world_size

    @torch.no_grad()
    def quantize_(self, weight: torch.Tensor) -> None:
        """Replace the stored weight with ``weight`` (dense, full shape), quantised.

        A sharded weight quantises only its own rows of ``weight``.
        """
        if weight.shape != self.shape:
            raise ValueError(
                f"NF4 weight expects shape {tuple(self.shape)}, got {tuple(weight.shape)}"
            )
        self.quantize_rows_(weight[self.rows[0] : self.rows[1]])

    @torch.no_grad()
    def quantize_rows_(self, rows: torch.Tensor) -> None:
        """Quantise this rank's rows (``rows`` is dense, ``self.rows`` of the full weight)."""
        expected = (self.rows[1] - self.rows[0], self.shape[1])
        if tuple(rows.shape) != expected:
            raise ValueError(
                f"NF4 weight {tuple(self.shape)} holds rows {self.rows[0]}:{self.rows[1]}, "
                f"shape {expected}; got {tuple(rows.shape)}"
            )
        if rows.is_meta:
            return
        if self.is_offloaded:  # quantise where it computes, keep the result on the host
            device = self.compute_device
        else:
            device = self.packed.device if not self.packed.is_meta else rows.device
        if rows.numel() == 0:
            packed, absmax = _empty_buffers(0, device)
        else:
            dense = rows.to(device=device, dtype=self.dtype).contiguous()
            packed, absmax = quantize_nf4(dense, BLOCKSIZE)
        if self.is_offloaded:
            packed, absmax = self._host(packed), self._host(absmax)
        self.packed, self.absmax = packed, absmax

    def dequantize(self) -> torch.Tensor:
        """The whole dense weight, dequantised (no autograd history).

        Sharded, this gathers every rank's rows from the shard group: a collective that
        every rank of the group must call. Offloaded, the result is on the compute device,
        and so are the copies of the stored bytes it is made from, freed on return.
        """
        packed, absmax = self._gather() if self.is_sharded else self._on_device()
        return _dequantize(packed, absmax, self.shape, self.dtype)

    def dequantize_rows(self) -> torch.Tensor:
        """This rank's rows of the weight, dequantised locally (no communication)."""
        shape = torch.Size((self.rows[1] - self.rows[0], self.shape[1]))
        if shape.numel() == 0:
            return torch.empty(shape, dtype=self.dtype, device=self._device())
        return _dequantize(*self._on_device(), shape, self.dtype)

    def nbytes(self) -> int:
        """Bytes of storage this rank holds for the weight (packed values plus absmax)."""
        return self.packed.nbytes + self.absmax.nbytes

    def _gather(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole weight's packed bytes and absmax, from every rank's equal-size chunk.

        Each rank sends its bytes and absmax (as bytes) in one padded chunk of
        ``rows_per_shard`` rows, so one all-gather into one tensor fetches both. Offloaded,
        the chunk is on the compute device and the stored bytes are copied into it.
        """
        values = self.rows_per_shard * self.shape[1]  # a multiple of BLOCKSIZE
        n_packed, n_absmax = values // 2, 4 * (values // BLOCKSIZE)
        device = self._device()
        chunk = torch.zeros(n_packed + n_absmax, dtype=torch.uint8, device=device)
        chunk[: self.packed.numel()].copy_(self.packed.view(-1), non_blocking=True)
        absmax = self.absmax.view(torch.uint8)
        chunk[n_packed : n_packed + self.absmax.nbytes].copy_(absmax, non_blocking=True)
        gathered = torch.empty(self.world_size * chunk.numel(), dtype=torch.uint8, device=device)
        _ALL_GATHER(gathered, chunk, group=self.group)
        gathered = gathered.view(self.world_size, -1)
        total = self.shape.numel()
        packed = gathered[:, :n_packed].reshape(-1)[: math.ceil(total / 2)].view(-1, 1)
        absmax = gathered[:, n_packed:].reshape(-1).view(torch.float32)[: _blocks(total)]
        return packed, absmax

    def _device(self) -> torch.device:
        """Where the weight is dequantised: the compute device, or where its buffers are."""
        return self.compute_device if self.is_offloaded else self.packed.device

    def _on_device(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's packed bytes and absmax on the compute device (copies if offloaded).

        From pinned host memory the copies are asynchronous; the caller's use of them is
        queued after the copy on the same stream.
        """
        device = self._device()
        return (
            self.packed.to(device, non_blocking=True),
            self.absmax.to(device, non_blocking=True),
        )

    def _host(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` in host memory, pinned when the compute device is a CUDA device."""
        pin = self.compute_device is not None and self.compute_device.type == "cuda"
        if tensor.device.type == "cpu" and (tensor.is_pinned() or not pin):
            return tensor
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=pin)
        return host.copy_(tensor)

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # noqa: D102
        if self.in_state_dict:
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
        sharded = f", rows={self.rows[0]}:{self.rows[1]}" if self.is_sharded else ""
        offload = f", host storage, computes on {self.compute_device}" if self.is_offloaded else ""
        return (
            f"shape={tuple(self.shape)}, dtype={self.dtype}, blocksize={BLOCKSIZE}"
            f"{sharded}{offload}"
        )


@contextmanager
def nf4_left_out_of_state_dict(model: nn.Module) -> Iterator[None]:
    """Within the block, ``model.state_dict()`` has no NF4 ``weight`` keys.

    A train-state checkpoint holds only what trains; the frozen NF4 base is reloaded
    from the base checkpoint on resume, so it is neither gathered nor written.
    """
    weights = [m for m in model.modules() if isinstance(m, NF4Weight)]
    for weight in weights:
        weight.in_state_dict = False
    try:
        yield
    finally:
        for weight in weights:
            weight.in_state_dict = True


def linear_nf4(
    x: torch.Tensor, weight: NF4Weight, dense: torch.Tensor | None = None
) -> torch.Tensor:
    """``x W^T`` for an NF4 ``W``, keeping nothing of ``W`` alive for backward.

    Autograd's ``F.linear`` would save the dequantised weight until backward (the whole
    dense base, without activation checkpointing); here backward dequantises (and, if
    sharded, gathers) it again, as torchtune's ``linear_nf4`` does.

    Args:
        x: The input.
        weight: The frozen NF4 weight.
        dense: ``weight`` already dequantised, if the caller has it (it is not saved).
    """
    return _LinearNF4.apply(x, weight, dense)


class _LinearNF4(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, dense):  # noqa: D102
        ctx.weight = weight
        full = weight.dequantize() if dense is None else dense
        return F.linear(x, full.to(x.dtype))

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return grad @ ctx.weight.dequantize().to(grad.dtype), None, None


def _dequantize(
    packed: torch.Tensor, absmax: torch.Tensor, shape: torch.Size, dtype: torch.dtype
) -> torch.Tensor:
    """Dequantise ``packed`` to ``shape``, the values read as one flat sequence."""
    with torch.no_grad():
        return dequantize_nf4(packed, absmax, shape.numel(), BLOCKSIZE, dtype).view(shape)


def _blocks(values: int) -> int:
    return math.ceil(values / BLOCKSIZE)


def _empty_buffers(values: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeroed packed bytes and absmax for ``values`` weights, in the codec's layout."""
    packed = torch.zeros(math.ceil(values / 2), 1, dtype=torch.uint8, device=device)
    absmax = torch.zeros(_blocks(values), dtype=torch.float32, device=device)
    return packed, absmax
