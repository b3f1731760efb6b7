"""FSDP2 sharding, activation checkpointing and owned-rows weight loading for any decoder.

Model files hold architecture only; parallelism is applied from outside by these
functions, which work for every :class:`~modeling.modules.TransformerDecoder`. The load
order follows torchtune's distributed recipes: build on ``meta``, freeze, activation
checkpointing, shard, materialise, load each rank's rows into its shards, then check nothing is
left on ``meta``.
"""

from collections.abc import Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed._composable import checkpoint as checkpoint_module
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor, Shard

from modeling.modules import RotaryPositionalEmbeddings, TransformerDecoder
from modeling.peft import LoRALinear, NF4Weight, is_adapter_key


def apply_activation_checkpointing(model: TransformerDecoder) -> None:
    """Recompute each decoder layer's activations in backward instead of storing them.

    Uses the composable ``checkpoint`` so parameter names (and so checkpoints) are unchanged.
    """
    for layer in model.layers:
        checkpoint_module(layer)


def shard_decoder(
    model: TransformerDecoder,
    *,
    mesh: DeviceMesh | None = None,
    param_dtype: torch.dtype | None = None,
    reduce_dtype: torch.dtype = torch.float32,
    reshard_after_forward: bool = True,
    cpu_offload: bool = False,
) -> TransformerDecoder:
    """Apply FSDP2 ``fully_shard`` to every decoder layer and then the root.

    Args:
        model: The decoder (on ``meta`` or a real device).
        mesh: 1-D mesh to shard over, or 2-D ``(replicate, shard)`` mesh for HSDP (shard
            within a node, replicate across nodes). The default process group when None.
        param_dtype: Dtype of gathered parameters for compute (bf16 on GPU); None keeps
            the stored dtype.
        reduce_dtype: Dtype of gradient reduction (float32 keeps reductions exact).
        reshard_after_forward: Free gathered layer parameters after forward (ZeRO-3).
        cpu_offload: Keep sharded parameters, their gradients and so the optimizer state
            in host memory (FSDP2's ``CPUOffloadPolicy``), and NF4 bases too
            (:meth:`~modeling.peft.NF4Weight.offload_`); each layer's parameters, and each
            NF4 projection's rows, are copied to the device for their all-gather.
            Materialise the model with ``materialize(..., params_on_host=True)``.
    """
    shard_nf4_weights(model, mesh, offload_to=_compute_device(mesh) if cpu_offload else None)
    options = {
        "mesh": mesh,
        "mp_policy": MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype),
        "reshard_after_forward": reshard_after_forward,
    }
    if cpu_offload:
        # Pinned host memory makes the copies asynchronous; there is none without CUDA.
        options["offload_policy"] = CPUOffloadPolicy(pin_memory=torch.cuda.is_available())
    for layer in model.layers:
        fully_shard(layer, **options)
    fully_shard(model, **options)
    return model


def shard_nf4_weights(
    model: nn.Module,
    mesh: DeviceMesh | None = None,
    *,
    offload_to: torch.device | str | None = None,
) -> None:
    """Split every NF4 base weight by rows over the shard dimension of ``mesh``.

    FSDP2 shards parameters only; NF4 bases are buffers, so :func:`shard_decoder` shards
    them here, over the same ranks (all ranks, or one node's under HSDP). Each rank then
    quantises, holds and reads only its rows, cut on NF4 block boundaries
    (:func:`modeling.peft.nf4.shard_rows`), and gathers the rest whenever it dequantises.

    Args:
        model: The model, on ``meta`` or a real device.
        mesh: As for :func:`shard_decoder`.
        offload_to: Keep each rank's NF4 rows in host memory and gather and dequantise
            them on this device (FSDP2's CPU offload, for buffers); None leaves them
            where the model is materialised.
    """
    if mesh is None:
        group, rank, world = dist.group.WORLD, dist.get_rank(), dist.get_world_size()
    else:
        dim = mesh.ndim - 1  # (replicate, shard) under HSDP: shard is the last
        group, rank, world = mesh.get_group(dim), mesh.get_local_rank(dim), mesh.size(dim)
    for module in model.modules():
        if isinstance(module, NF4Weight):
            module.shard_(group, rank, world)
            if offload_to is not None:
                module.offload_(offload_to)


def _compute_device(mesh: DeviceMesh | None) -> torch.device:
    """The device FSDP2 computes on for ``mesh``: its type, and the current CUDA device.

    Without a mesh FSDP2 builds one over all ranks on CUDA when there is CUDA.
    """
    kind = mesh.device_type if mesh is not None else "cuda" if torch.cuda.is_available() else "cpu"
    return (
        torch.device("cuda", torch.cuda.current_device()) if kind == "cuda" else torch.device(kind)
    )


def materialize(
    model: nn.Module, device: torch.device | str, *, params_on_host: bool = False
) -> None:
    """Allocate a ``meta`` model on ``device`` and recompute its non-persistent buffers.

    Parameters are left uninitialised: the base weights are loaded next, and LoRA
    adapters get their initialisation here (A Kaiming, B zero). Offloaded NF4 bases
    (:meth:`~modeling.peft.NF4Weight.offload_`) are allocated in host memory, whatever
    ``params_on_host`` says.

    Args:
        model: The model, on ``meta``.
        device: Where it computes.
        params_on_host: Allocate parameters and NF4 bases in host memory and only the
            other buffers (RoPE caches) on ``device``, as FSDP2's CPU offload requires
            (``shard_decoder(cpu_offload=True)``). NF4 bases not offloaded yet are
            offloaded here, computing on ``device``.
    """
    device, host = torch.device(device), torch.device("cpu")
    nf4 = [m for m in model.modules() if isinstance(m, NF4Weight)]
    if params_on_host:
        for weight in nf4:
            if not weight.is_offloaded:
                weight.offload_(device)  # on meta: records where it computes
    # One _apply over the whole model, as to_empty does: FSDP2 re-registers its sharded
    # parameters once its module's tensors are all replaced. NF4 storage that is
    # offloaded gets host memory (unpinned placeholders until loading quantises into
    # pinned memory); with params_on_host everything else does too, and the other buffers
    # then move to the device.
    offloaded = [b for w in nf4 if w.is_offloaded for b in (w.packed, w.absmax)]
    on_host = {id(b) for b in offloaded}  # the list keeps the ids from being reused
    target = host if params_on_host else device
    model._apply(lambda t: torch.empty_like(t, device=host if id(t) in on_host else target))
    if params_on_host:
        for module in model.modules():
            if isinstance(module, NF4Weight):
                continue
            for name, buffer in module.named_buffers(recurse=False):
                module._buffers[name] = buffer.to(device)
    for module in model.modules():
        if isinstance(module, RotaryPositionalEmbeddings):
            module.reset_cache()
        elif isinstance(module, LoRALinear):
            with torch.no_grad():
                _init_adapter(module)


def _init_adapter(module: LoRALinear) -> None:
    a, b = module.lora_a.weight, module.lora_b.weight
    full_a = torch.empty(a.shape, dtype=a.dtype)
    nn.init.kaiming_uniform_(full_a, a=5**0.5)
    _assign(a, full_a)
    (b.to_local() if isinstance(b, DTensor) else b).zero_()


def load_owned_rows(
    model: nn.Module,
    read_rows: Callable[[str, int, int], torch.Tensor],
    keys: Iterable[str],
    *,
    strict: bool = True,
) -> set[str]:
    """Load base weights, reading on each rank only the rows its FSDP shards own.

    The one weight-loading loop: a rank's reads add up to its shard of the model (NF4
    bases included) plus the replicated tensors (norms), so no rank holds the whole state
    dict. NF4 base weights are quantised as they arrive, and fresh DoRA magnitudes are set
    from the row norms of their base weight.

    Args:
        model: A materialised model; parameters may be FSDP2 ``DTensor`` shards (dim 0).
        read_rows: ``read_rows(key, start, stop)`` returns rows ``[start, stop)`` of our
            tensor ``key`` (a checkpointer's ``read_rows``, or slices of a state dict).
        keys: Our keys present in the source.
        strict: Raise for source keys the model lacks or base weights it misses.

    Returns:
        The keys loaded.

    Raises:
        ValueError: Naming unknown keys, shape mismatches, and missing base weights.
    """
    targets = _load_targets(model)
    dora = _dora_modules(model)
    present = set(keys)
    if strict:
        _check_keys(present, targets)
    loaded = set()
    with torch.no_grad():
        for key, target in targets.items():
            if key not in present:
                continue
            start, stop = _owned_rows(target)
            rows = read_rows(key, start, stop)
            if tuple(rows.shape[1:]) != tuple(target.shape[1:]) or len(rows) != stop - start:
                raise ValueError(
                    f"Shape mismatch for {key!r}: checkpoint rows {start}:{stop} have shape "
                    f"{tuple(rows.shape)}, model expects {(stop - start, *target.shape[1:])}"
                )
            if isinstance(target, NF4Weight):
                target.quantize_rows_(rows)
            else:
                _assign_rows(target, rows)
            fresh = key in dora and key.removesuffix("weight") + "magnitude" not in present
            if fresh:  # fresh adapters (B = 0): DoRA magnitude = row norms of W
                magnitude = dora[key].magnitude
                own = _owned_rows(magnitude)  # NF4 rows follow blocks, FSDP's do not
                src = rows if own == (start, stop) else read_rows(key, *own)
                _assign_rows(magnitude, torch.linalg.vector_norm(src.float(), dim=1))
            loaded.add(key)
    return loaded


def gather_full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor on the CPU, gathering FSDP shards (a collective on every rank).

    A shard offloaded to host memory (``cpu_offload``) is moved to its mesh's device for
    the gather first, since NCCL gathers only device tensors.
    """
    return _full_on_mesh_device(tensor).detach().cpu()


def join_gather(tensor: torch.Tensor) -> None:
    """Take part in gathering ``tensor`` as :func:`gather_full` does, and keep nothing.

    The ranks that do not write a tensor still join its collective, the same one.
    """
    _full_on_mesh_device(tensor)


def _full_on_mesh_device(tensor: torch.Tensor) -> torch.Tensor:
    if isinstance(tensor, DTensor):
        mesh_device = tensor.device_mesh.device_type
        if tensor.device.type != mesh_device:
            local = tensor.to_local().to(mesh_device)
            tensor = DTensor.from_local(
                local,
                tensor.device_mesh,
                tensor.placements,
                shape=tensor.shape,
                stride=tensor.stride(),
            )
        tensor = tensor.full_tensor()
    return tensor


def assert_nothing_on_meta(model: nn.Module) -> None:
    """Raise if any parameter or buffer is still on ``meta`` (a weight was never loaded)."""
    leftovers = [
        name
        for name, t in (*model.named_parameters(), *model.named_buffers())
        if (t.to_local() if isinstance(t, DTensor) else t).is_meta
    ]
    if leftovers:
        raise RuntimeError(f"Tensors left on the meta device after loading: {leftovers[:10]}")


def _assign(target: torch.Tensor, full: torch.Tensor) -> None:
    """Copy ``full`` into ``target``, taking only this rank's rows if it is FSDP-sharded."""
    start, stop = _owned_rows(target)
    _assign_rows(target, full[start:stop])


def _assign_rows(target: torch.Tensor, rows: torch.Tensor) -> None:
    """Copy this rank's ``rows`` into ``target`` (its local shard if it is a DTensor)."""
    (target.to_local() if isinstance(target, DTensor) else target).copy_(rows)


def _owned_rows(target: torch.Tensor | NF4Weight) -> tuple[int, int]:
    """The dim-0 rows of the full tensor this rank holds (all rows unless sharded)."""
    if isinstance(target, NF4Weight):
        return target.rows
    rows = target.shape[0]
    if not isinstance(target, DTensor):
        return 0, rows
    placement = next((p for p in target.placements if isinstance(p, Shard)), None)
    if placement is None:
        return 0, rows
    if placement.dim != 0:
        raise ValueError(f"Only dim-0 FSDP shards can be read by rows, got {placement}")
    index = list(target.placements).index(placement)
    world, rank = target.device_mesh.size(index), target.device_mesh.get_local_rank(index)
    chunk = -(-rows // world)  # torch.chunk's ceil-divided size
    start = min(rank * chunk, rows)
    return start, start + target.to_local().shape[0]


def _check_keys(present: set[str], targets: dict) -> None:
    unknown = sorted(present - set(targets))
    if unknown:
        raise ValueError(f"Checkpoint keys the model does not have: {unknown[:10]}")
    missing = sorted(k for k in targets if k not in present and not is_adapter_key(k))
    if missing:
        raise ValueError(f"Base weights missing from the checkpoint: {missing[:10]}")


def _dora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    """DoRA layers by the key of their base weight (their magnitude derives from it)."""
    return {
        f"{name}.weight": m
        for name, m in model.named_modules()
        if isinstance(m, LoRALinear) and m.use_dora
    }


def _load_targets(model: nn.Module) -> dict[str, torch.Tensor | NF4Weight]:
    """Every loadable tensor by state-dict name; NF4 weights under their dense name."""
    targets: dict[str, torch.Tensor | NF4Weight] = dict(model.named_parameters())
    for name, module in model.named_modules():
        if isinstance(module, NF4Weight):
            targets[name] = module
    return targets
