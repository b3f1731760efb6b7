"""``merge_adapter`` split over ranks: disjoint shards per rank, the same bytes as one rank."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from modeling.checkpointing import merge_adapter
from modeling.checkpointing.readers import TensorIndex
from modeling.peft import get_adapter_params
from tests.modeling.test_checkpointing_peft import LORA, trained_lora

pytest.importorskip("peft")


def _merge_worker(rank, port, base, adapter, out, log):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    reads = []
    original = TensorIndex.read

    def counting_read(self, key, index=None):
        reads.append(key)
        return original(self, key, index)

    TensorIndex.read = counting_read
    try:
        merge_adapter(base, adapter, out, max_shard_size="60KB", rank=rank, world_size=2)
        torch.save(reads, f"{log}.{rank}")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


def test_two_ranks_write_disjoint_shards_identical_to_one_rank(tmp_path):
    model, ckpt, base = trained_lora(tmp_path)
    ckpt.save_checkpoint(None, adapter_weights=get_adapter_params(model), adapter_config=dict(LORA))
    adapter = tmp_path / "out" / "adapter"
    single = merge_adapter(base, adapter, tmp_path / "one", max_shard_size="60KB")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = tmp_path / "two"
    mp.start_processes(
        _merge_worker,
        args=(port, base, adapter, two, str(tmp_path / "reads")),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    names = sorted(p.name for p in single.iterdir())
    assert sorted(p.name for p in two.iterdir()) == names
    assert sum(name.endswith(".safetensors") for name in names) >= 4
    for name in names:
        assert (single / name).read_bytes() == (two / name).read_bytes(), name
    reads = [set(torch.load(tmp_path / f"reads.{rank}")) for rank in (0, 1)]
    assert reads[0] and reads[1] and not reads[0] & reads[1]  # no base tensor read twice
    assert reads[0] | reads[1] == set(TensorIndex(list(base.glob("*.safetensors"))).names())
    assert not list(tmp_path.glob(".two.*"))  # no staging directory left behind
