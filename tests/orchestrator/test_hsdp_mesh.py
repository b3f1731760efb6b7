"""HSDP: the recipe's 2-D (replicate, shard) mesh over 'two nodes' of two ranks, on gloo."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.tensor import Replicate, Shard

from modeling.llama3 import lora_llama3
from modeling.peft import get_adapter_params, set_trainable_params
from modeling.sharding import load_owned_rows, materialize, shard_decoder
from orchestrator.training.device_mesh import device_mesh
from tests.modeling.test_sharding import SIZES, reference_state

LORA = dict(lora_attn_modules=["q_proj", "v_proj"], apply_lora_to_mlp=True, lora_rank=4)


def _worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=4)
    try:
        cpu = torch.device("cpu")
        assert device_mesh(cpu, 4, node_id="one-node") is None  # plain FSDP
        assert device_mesh(cpu, 4, node_id=f"n{rank % 2}") is None  # ranks not grouped
        assert device_mesh(cpu, 4, node_id=f"node{rank // 2}", sharding="fsdp") is None
        try:  # asked for HSDP, ranks 3 + 1 over two nodes cannot replicate evenly
            device_mesh(cpu, 4, node_id="a" if rank < 3 else "b", sharding="hsdp")
        except ValueError as error:
            uneven_refused = "sharding: hsdp needs the same number of ranks" in str(error)
        else:
            uneven_refused = False
        forced = device_mesh(cpu, 4, node_id="one-node", sharding="hsdp")  # (1, 4) on one node
        mesh = device_mesh(cpu, 4, node_id=f"node{rank // 2}")
        with torch.device("meta"):
            model = lora_llama3(**SIZES, **LORA)
        set_trainable_params(model, get_adapter_params(model))
        shard_decoder(model, mesh=mesh)
        materialize(model, cpu)
        state = reference_state()
        reads = []

        def read_rows(key, start, stop):
            reads.append((key, stop - start))
            return state[key][start:stop]

        load_owned_rows(model, read_rows, state.keys())
        tokens = torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))
        weight = model.layers[0].mlp.w1.weight
        torch.save(
            (
                tuple(mesh.shape),
                mesh.mesh_dim_names,
                tuple(weight.placements),
                model(tokens).detach(),
                reads,
                (uneven_refused, tuple(forced.shape)),
            ),
            f"{out}.{rank}",
        )
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


def test_hsdp_shards_within_a_node_and_matches_the_unsharded_model(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _worker, args=(port, str(tmp_path / "r")), nprocs=4, join=True, start_method="spawn"
    )
    model = lora_llama3(**SIZES, **LORA)
    model.load_state_dict(reference_state(), strict=False)
    tokens = torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))
    expected = model(tokens).detach()
    for rank in range(4):
        shape, names, placements, logits, reads, choices = torch.load(
            tmp_path / f"r.{rank}", weights_only=False
        )
        assert choices == (True, (1, 4))  # sharding: hsdp is honoured, or refused by name
        assert shape == (2, 2) and names == ("replicate", "shard")
        assert placements == (Replicate(), Shard(0))
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
        w1_rows = dict(reads)["layers.0.mlp.w1.weight"]
        assert w1_rows == SIZES["intermediate_dim"] // 2  # half the rows: one node's shard
