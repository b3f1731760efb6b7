"""The device mesh a run shards over: FSDP over all ranks, or HSDP across nodes."""

import torch
import torch.distributed as dist

SHARDINGS = ("fsdp", "hsdp")


def check_sharding(sharding: str | None) -> str | None:
    """``sharding`` if it names a layout (or is None: the default), else a ``ValueError``."""
    if sharding is not None and sharding not in SHARDINGS:
        raise ValueError(
            f"sharding must be one of {', '.join(SHARDINGS)} (or null for the default: HSDP "
            f"when the job spans nodes, FSDP on one), got {sharding!r}"
        )
    return sharding


def device_mesh(device: torch.device, world_size: int, node_id: str, sharding: str | None = None):
    """The mesh to shard over: a 2-D ``(replicate, shard)`` mesh for HSDP, or None for FSDP.

    HSDP shards within a node, where bandwidth is high, and replicates across nodes; FSDP
    shards over every rank, which holds the least per rank. By default (``sharding``
    None) a job that spans nodes evenly uses HSDP, any other FSDP. Every rank must agree,
    so the layout comes from all ranks' node ids: HSDP needs equal numbers of ranks per
    node with consecutive world ranks (Ray Train groups ranks by node).

    Args:
        device: This rank's device (its type names the mesh's backend).
        world_size: Ranks in the job.
        node_id: This rank's node; ranks with equal ids share a machine.
        sharding: ``fsdp``, ``hsdp`` or None (the default above).

    Raises:
        ValueError: For an unknown ``sharding``, or ``hsdp`` on ranks that are not spread
            evenly and contiguously over their nodes.
    """
    from torch.distributed.device_mesh import init_device_mesh

    check_sharding(sharding)
    if sharding == "fsdp":
        return None
    nodes: list[str] = [""] * world_size
    dist.all_gather_object(nodes, node_id)
    hosts = list(dict.fromkeys(nodes))
    per_node = world_size // len(hosts)
    even = nodes == [h for h in hosts for _ in range(per_node)]
    if sharding == "hsdp" and not even:
        counts = ", ".join(f"{nodes.count(h)}" for h in hosts)
        raise ValueError(
            f"sharding: hsdp needs the same number of ranks on every node, got {counts} over "
            f"{len(hosts)} nodes; set num_workers to a multiple of the node count or "
            f"sharding: fsdp"
        )
    if sharding is None and (len(hosts) == 1 or not even):
        return None
    return init_device_mesh(
        device.type, (len(hosts), per_node), mesh_dim_names=("replicate", "shard")
    )
