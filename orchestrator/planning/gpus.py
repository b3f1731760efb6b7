"""Accelerators the memory planner knows: name, memory a process can allocate, device kind.

Capacities are the totals ``nvidia-smi`` reports (MiB), not the marketing figures, because
those are what ``torch.cuda`` can hand out. ``cpu`` plans a CPU run (the recipe computes in
float32 there) against this machine's physical memory. The workstation cards are those the
published figures in ``docs/benchmarks.md`` were measured on (torchtune's README: RTX 4090,
RTX A6000; Answer.AI's FSDP+QLoRA: 2 x RTX 3090 or 4090); their totals are those
``nvidia-smi`` prints for them: 24564 MiB (RTX 4090), 24576 MiB (RTX 3090), 49140 MiB
(RTX A6000).
"""

import os
from dataclasses import dataclass

from orchestrator.config.suggest import did_you_mean

MIB = 2**20
GIB = 2**30


@dataclass(frozen=True)
class Accelerator:
    """One device a rank runs on.

    Attributes:
        name: The ``--gpu`` name.
        capacity_bytes: Memory one rank can allocate on it.
        kind: ``cuda`` (bf16 params, fused RMSNorm, flash attention) or ``cpu`` (float32).
    """

    name: str
    capacity_bytes: int
    kind: str = "cuda"


GPUS = {
    "h100-80gb": Accelerator("h100-80gb", 81559 * MIB),
    "h200": Accelerator("h200", 143771 * MIB),
    "a100-80gb": Accelerator("a100-80gb", 81920 * MIB),
    "a100-40gb": Accelerator("a100-40gb", 40960 * MIB),
    "l40s": Accelerator("l40s", 46068 * MIB),
    "l4": Accelerator("l4", 23034 * MIB),
    "a10g": Accelerator("a10g", 23028 * MIB),
    "rtx4090": Accelerator("rtx4090", 24564 * MIB),
    "rtx3090": Accelerator("rtx3090", 24576 * MIB),
    "rtx-a6000": Accelerator("rtx-a6000", 49140 * MIB),
}


def host_memory_bytes() -> int:
    """Physical memory of this machine (the capacity of ``--gpu cpu``)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def accelerator(name: str) -> Accelerator:
    """The accelerator called ``name`` (case-insensitive).

    Raises:
        ValueError: Naming the unknown value, the closest known name and every known name.
    """
    key = name.strip().lower()
    if key == "cpu":
        return Accelerator("cpu", host_memory_bytes(), kind="cpu")
    if key not in GPUS:
        names = [*GPUS, "cpu"]
        prefixed = [n for n in names if n.startswith(key)]
        hint = f" Did you mean '{prefixed[0]}'?" if prefixed else did_you_mean(key, names)
        raise ValueError(f"Unknown --gpu {name!r}.{hint} Known: {', '.join(names)}")
    return GPUS[key]
