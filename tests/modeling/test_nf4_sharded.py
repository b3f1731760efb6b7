"""NF4 bases sharded by rows: the same bytes as on one rank, and no dense weight kept."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from modeling.peft import FrozenNF4Linear, LoRALinear, NF4Weight
from modeling.peft.nf4 import BLOCKSIZE, shard_rows

# (out_dim, in_dim): block-aligned rows, in_dim not a multiple of 64 (a block spans rows),
# an odd number of values (half a packed byte), and a shard left with no rows.
SHAPES = [(72, 32), (130, 33), (7, 100), (64, 64), (3, 65), (257, 3)]


def dense(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        results = []
        for i, shape in enumerate(SHAPES):
            weight = dense(shape, i)
            with torch.device("meta"):
                loaded = NF4Weight(*shape)  # the recipe's path: shard on meta, load rows
            loaded.shard_(dist.group.WORLD, rank, 2)
            loaded.to_empty(device="cpu")
            start, stop = loaded.rows
            loaded.quantize_rows_(weight[start:stop])
            sliced = NF4Weight(*shape)  # a quantised weight sharded afterwards
            sliced.quantize_(weight)
            sliced.shard_(dist.group.WORLD, rank, 2)
            assert sliced.rows == loaded.rows
            results.append(
                dict(
                    rows=loaded.rows,
                    packed=loaded.packed.clone(),
                    absmax=loaded.absmax.clone(),
                    sliced=(sliced.packed.clone(), sliced.absmax.clone()),
                    gathered=loaded.dequantize(),  # a collective: every rank calls it
                    local=loaded.dequantize_rows(),
                )
            )
        torch.save(results, f"{out}.{rank}")
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


def test_sharded_quantisation_equals_one_rank_byte_for_byte(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "nf4")
    mp.start_processes(_worker, args=(port, out), nprocs=2, join=True, start_method="spawn")
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    for i, shape in enumerate(SHAPES):
        whole = NF4Weight(*shape)
        whole.quantize_(dense(shape, i))
        first, second = ranks[0][i], ranks[1][i]
        assert first["rows"][0] == 0 and first["rows"][1] == second["rows"][0], shape
        assert second["rows"][1] == shape[0], shape
        # Shards start on a block boundary of the flattened weight.
        assert second["rows"][0] * shape[1] % BLOCKSIZE == 0 or second["rows"][0] == shape[0]
        assert first["rows"][1] == min(shard_rows(*shape, 2), shape[0])
        packed = torch.cat([first["packed"], second["packed"]])
        absmax = torch.cat([first["absmax"], second["absmax"]])
        assert torch.equal(packed, whole.packed), shape
        assert torch.equal(absmax, whole.absmax), shape
        for shard in (first, second):
            assert torch.equal(shard["sliced"][0], shard["packed"]), shape
            assert torch.equal(shard["sliced"][1], shard["absmax"]), shape
            assert torch.equal(shard["gathered"], whole.dequantize()), shape
            start, stop = shard["rows"]
            assert torch.equal(shard["local"], whole.dequantize()[start:stop]), shape
    # Rows split as evenly as blocks allow: 72 rows of 32 values go 36 + 36.
    assert [r[0]["rows"] for r in ranks] == [(0, 36), (36, 72)]
    assert ranks[1][SHAPES.index((3, 65))]["rows"] == (3, 3)  # 64-row blocks: rank 1 empty


def test_shard_rows_keep_blocks_whole():
    for out_dim, in_dim in SHAPES + [(14336, 4096), (1000, 1001)]:
        for world in (2, 3, 8):
            per = shard_rows(out_dim, in_dim, world)
            assert per * in_dim % BLOCKSIZE == 0
            assert per * world >= out_dim
            assert per < -(-out_dim // world) + BLOCKSIZE  # at most one block's rows more


def _saved_numels(module: torch.nn.Module, x: torch.Tensor) -> list[int]:
    """Sizes of every tensor autograd saves for backward in ``module(x)``."""
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x).pow(2).sum().backward()
    return saved


@pytest.mark.parametrize("use_dora", [False, True])
def test_nf4_linear_keeps_no_dense_weight_for_backward(use_dora):
    torch.manual_seed(0)
    layers = [
        FrozenNF4Linear(96, 128),
        LoRALinear(96, 128, rank=4, alpha=8, quantize_base=True, use_dora=use_dora),
    ]
    for layer in layers:
        x = torch.randn(2, 5, 96, requires_grad=True)
        numels = _saved_numels(layer, x)
        assert max(numels, default=0) < 128 * 96  # nothing weight-sized is kept
        grad = x.grad.clone()
        # Same gradients as autograd through a plain F.linear on the dequantised weight.
        x.grad = None
        weight = layer.weight.dequantize()
        if isinstance(layer, LoRALinear):
            reference = LoRALinear(96, 128, rank=4, alpha=8, use_dora=use_dora)
            reference.load_state_dict(layer.state_dict())
            out = reference(x)
        else:
            out = F.linear(x, weight)
        out.pow(2).sum().backward()
        torch.testing.assert_close(x.grad, grad, atol=1e-5, rtol=1e-5)
