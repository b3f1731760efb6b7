"""The recipe on two gloo ranks without Ray: gradient sync per step, CPU offload, sharding."""

import os
import socket
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from orchestrator.training.device_mesh import check_sharding
from tests.orchestrator.recipe_fixtures import FULL_FINETUNE, GlooSession, demo_config

FULL = [*FULL_FINETUNE, "optimizer.lr=1e-3"]
RUNS = {
    "whole": ["batch_size=4"],
    "accumulated": ["batch_size=2", "gradient_accumulation_steps=2"],
    "offload": ["batch_size=4", "fsdp_cpu_offload=True"],
    "full": ["batch_size=4", *FULL],
    "full_offload": ["batch_size=4", "fsdp_cpu_offload=True", "sharding=fsdp", *FULL],
}


def _worker(rank, port, assets, out):
    from orchestrator.recipes.finetune import finetune

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    # FSDP2 reduces gradients through this (reduce_scatter_tensor before torch 2.13).
    name = "reduce_scatter_single"
    if not hasattr(dist, name):
        name = "reduce_scatter_tensor"
    reduce_scatter = getattr(dist, name)
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return reduce_scatter(*args, **kwargs)

    setattr(dist, name, counted)
    try:
        for name, overrides in RUNS.items():
            calls.clear()
            cfg = demo_config(
                Path(assets),
                Path(out) / name,
                "max_steps_per_epoch=3",
                "save_every_n_steps=0",
                *overrides,
            )
            finetune(cfg, GlooSession(rank))
            if rank == 0:
                (Path(out) / name / "reduce_scatters").write_text(str(len(calls)))
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    assets = tmp_path_factory.mktemp("assets")
    out = tmp_path_factory.mktemp("runs")
    demo_config(assets, out / "unused")  # the demo's assets, made once before the ranks start
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _worker, args=(port, str(assets), str(out)), nprocs=2, join=True, start_method="spawn"
    )
    return out


def _losses(run: Path) -> list[float]:
    from orchestrator.training.metric_logger import read_metrics

    return [r["loss"] for r in read_metrics(run / "metrics.jsonl")]


def test_accumulated_gradients_are_reduced_once_per_step(runs):
    assert _losses(runs / "accumulated") == pytest.approx(_losses(runs / "whole"), abs=1e-5)
    whole = int((runs / "whole" / "reduce_scatters").read_text())
    accumulated = int((runs / "accumulated" / "reduce_scatters").read_text())
    assert whole > 0 and accumulated == whole  # two micro-batches, one reduction per step


def test_cpu_offload_gives_the_same_losses(runs):
    assert len(_losses(runs / "offload")) == 3
    assert _losses(runs / "offload") == pytest.approx(_losses(runs / "whole"), abs=1e-5)
    assert _losses(runs / "full_offload") == pytest.approx(_losses(runs / "full"), abs=1e-5)
    assert (runs / "full_offload" / "merged" / "config.json").exists()


def test_unknown_sharding_is_refused_by_name():
    with pytest.raises(ValueError, match="sharding must be one of fsdp, hsdp.*'zero3'"):
        check_sharding("zero3")
