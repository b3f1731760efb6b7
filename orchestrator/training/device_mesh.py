"""The device mesh a run shards over: FSDP on one node, HSDP across nodes."""

import torch
import torch.distributed as dist


def device_mesh(device: torch.device, world_size: int, node_id: str):
    """A 2-D ``(replicate, shard)`` mesh when the job spans nodes evenly, else None (FSDP).

    HSDP shards within a node, where bandwidth is high, and replicates across nodes. Every
    rank must agree, so the layout comes from all ranks' node ids: nodes must hold equal
    numbers of ranks with consecutive world ranks (Ray Train groups ranks by node).
    """
    from torch.distributed.device_mesh import init_device_mesh

    nodes: list[str] = [""] * world_size
    dist.all_gather_object(nodes, node_id)
    hosts = list(dict.fromkeys(nodes))
    per_node = world_size // len(hosts)
    contiguous = nodes == [h for h in hosts for _ in range(per_node)]
    if len(hosts) == 1 or not contiguous:
        return None
    return init_device_mesh(
        device.type, (len(hosts), per_node), mesh_dim_names=("replicate", "shard")
    )
