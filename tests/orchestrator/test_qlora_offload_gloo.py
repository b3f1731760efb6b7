"""QLoRA through the recipe on two gloo ranks, with and without ``fsdp_cpu_offload``.

Offloaded, each rank keeps its NF4 rows in host memory and copies them to the compute
device for every gather; the losses must not change. On CPU host and compute device are
the same, so the runs also record where the recipe's NF4 weights say they live and compute.
"""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.orchestrator.recipe_fixtures import GlooSession, demo_config

QLORA = ["batch_size=4", "model.quantize_base=True"]
RUNS = {"qlora": QLORA, "qlora_offload": [*QLORA, "fsdp_cpu_offload=True"]}


def _nf4_placement(model) -> list[dict]:
    """Where each NF4 weight's storage is, where it computes, and that it is sharded."""
    from modeling.peft import NF4Weight

    return [
        {
            "offloaded": m.is_offloaded,
            "compute_device": m.compute_device,
            "storage": {m.packed.device, m.absmax.device},
            "sharded": m.is_sharded,
            "nbytes": m.nbytes(),
        }
        for m in model.modules()
        if isinstance(m, NF4Weight)
    ]


def _worker(rank, port, assets, out):
    import orchestrator.recipes.finetune as recipe

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    placements = []
    checked = recipe.assert_nothing_on_meta

    def recording(model):  # the recipe calls it once the base weights are loaded
        checked(model)
        placements.append(_nf4_placement(model))

    recipe.assert_nothing_on_meta = recording
    try:
        for name, overrides in RUNS.items():
            placements.clear()
            cfg = demo_config(
                Path(assets),
                Path(out) / name,
                "max_steps_per_epoch=3",
                "save_every_n_steps=0",
                *overrides,
            )
            recipe.finetune(cfg, GlooSession(rank))
            torch.save(placements[0], Path(out) / name / f"nf4.{rank}")
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_assets_dir):
    out = tmp_path_factory.mktemp("runs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _worker,
        args=(port, str(demo_assets_dir), str(out)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    return out


def _losses(run: Path) -> list[float]:
    from orchestrator.training.metric_logger import read_metrics

    return [r["loss"] for r in read_metrics(run / "metrics.jsonl")]


def test_offloaded_nf4_base_gives_the_same_losses(runs):
    losses = _losses(runs / "qlora")
    assert len(losses) == 3
    assert _losses(runs / "qlora_offload") == pytest.approx(losses, abs=1e-5)
    assert (runs / "qlora_offload" / "merged" / "config.json").exists()


def test_recipe_offloads_nf4_rows_only_under_fsdp_cpu_offload(runs):
    for rank in range(2):
        plain = torch.load(runs / "qlora" / f"nf4.{rank}", weights_only=False)
        offloaded = torch.load(runs / "qlora_offload" / f"nf4.{rank}", weights_only=False)
        assert len(plain) == len(offloaded) == 8  # the layer's 7 projections and the output
        for weight in plain:
            assert not weight["offloaded"] and weight["compute_device"] is None
        for weight, same in zip(offloaded, plain, strict=True):
            assert weight["offloaded"] and weight["sharded"]
            assert weight["compute_device"] == torch.device("cpu")  # the session's device
            assert weight["storage"] == {torch.device("cpu")}  # host memory
            assert weight["nbytes"] == same["nbytes"]  # the same rows, quantised on load
