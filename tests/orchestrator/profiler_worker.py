"""A process of a two-rank gloo group that profiles three steps (spawned by test_profiler).

Kept apart from the test module so that spawned processes import only torch and the
profiler, not the recipe.
"""

import os

import torch
import torch.distributed as dist

from orchestrator.training.profiler import setup_torch_profiler


def profiled_worker(rank: int, world_size: int, store: str, output_dir: str) -> None:
    """Join the group, then step a profiler (wait 0, warmup 1, active 1) three times."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        profiler = setup_torch_profiler(
            enabled=True,
            cuda=False,
            wait_steps=0,
            warmup_steps=1,
            active_steps=1,
            num_cycles=1,
            output_dir=output_dir,
        )  # rank: from the process group
        profiler.start()
        for _ in range(3):
            value = torch.ones(8, 8) @ torch.ones(8, 8)
            dist.all_reduce(value)
            profiler.step()
        profiler.stop()
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    # Skip C++ teardown: gloo's threads, or the profiler's on a CUDA build of torch with no
    # driver (seen with torch 2.11), can abort a rank whose work is done and written.
    os._exit(0)
