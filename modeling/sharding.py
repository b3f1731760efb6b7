"""FSDP2 sharding, activation checkpointing and owned-rows weight loading for any decoder.

Model files hold architecture only; parallelism is applied from outside by these
functions, which work for every :class:`~modeling.modules.TransformerDecoder`. The load
order follows torchtune's distributed recipes: build on ``meta``, freeze, activation
checkpointing, shard, materialise, load each rank's rows into its shards, then check nothing is
left on ``meta``.
"""

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.distributed._composable import checkpoint as checkpoint_module
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
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
    """
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype)
    for layer in model.layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    return model


def materialize(model: nn.Module, device: torch.device | str) -> None:
    """Allocate a ``meta`` model on ``device`` and recompute its non-persistent buffers.

    Parameters are left uninitialised: the base weights are loaded next, and LoRA
    adapters get their initialisation here (A Kaiming, B zero).
    """
    model.to_empty(device=device)
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

    The one weight-loading loop: a rank's reads add up to its shard of the model plus the
    replicated tensors (norms, NF4 bases), so no rank holds the whole state dict. NF4 base
    weights are quantised as they arrive, and fresh DoRA magnitudes are set from the rows
    of their base weight.

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
                target.quantize_(rows)
            else:
                _assign_rows(target, rows)
            if key in dora:  # fresh adapters (B = 0): DoRA magnitude = row norms of W
                _assign_rows(dora[key].magnitude, torch.linalg.vector_norm(rows.float(), dim=1))
            loaded.add(key)
    return loaded


def gather_full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor on the CPU, gathering FSDP shards (a collective on every rank)."""
    if isinstance(tensor, DTensor):
        tensor = tensor.full_tensor()
    return tensor.detach().cpu()


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
    """The dim-0 rows of the full tensor this rank holds (all rows unless FSDP-sharded)."""
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
