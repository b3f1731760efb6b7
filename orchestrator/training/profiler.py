"""torch.profiler around the training loop, configured by torchtune's ``profiler:`` section.

``setup_torch_profiler`` takes torchtune's keys (``enabled``, the activities ``cpu`` /
``cuda`` / ``xpu``, the trace options, the ``wait_steps`` / ``warmup_steps`` /
``active_steps`` / ``num_cycles`` schedule and ``output_dir``). The recipe steps it once
per optimizer step. After each active cycle every rank writes, under
``output_dir/iteration_<step>/``, its Chrome/TensorBoard trace
(``rank<R>.<time>.pt.trace.json.gz``, for Perfetto or TensorBoard's profiler plugin) and
its table of operator averages (``rank<R>_key_averages.txt``), plus its stacks with
``with_stack`` and, on rank 0 with CUDA, the memory timeline and snapshot with
``profile_memory``. Disabled, it is a :class:`NullProfiler`, which does nothing at all.
"""

import logging
import os
import time
from collections.abc import Mapping
from typing import Any, Protocol

import torch
from torch.profiler import ProfilerActivity

from orchestrator.training.local_mirror import LocalMirror
from orchestrator.training.logger_backends import process_rank

log = logging.getLogger(__name__)

# torchtune's defaults, used for any schedule key a config leaves out.
DEFAULT_SCHEDULE = {"wait_steps": 5, "warmup_steps": 5, "active_steps": 2, "num_cycles": 1}
DEFAULT_OUTPUT_DIR = "profiler_output"


class Profiler(Protocol):
    """What the recipe calls: ``start`` before the loop, ``step`` per step, ``stop`` after."""

    def start(self) -> None:
        """Begin following the schedule."""

    def step(self) -> None:
        """Mark the end of one optimizer step."""

    def stop(self) -> None:
        """Stop; a cycle still recording is written out."""


class NullProfiler:
    """The disabled profiler: a null context whose methods do nothing."""

    def __enter__(self) -> "NullProfiler":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self) -> None:
        """Do nothing."""

    def step(self) -> None:
        """Do nothing."""

    def stop(self) -> None:
        """Do nothing."""


def setup_torch_profiler(
    enabled: bool = False,
    cpu: bool = True,
    cuda: bool = True,
    xpu: bool = True,
    profile_memory: bool = False,
    with_stack: bool = False,
    record_shapes: bool = True,
    with_flops: bool = False,
    wait_steps: int | None = None,
    warmup_steps: int | None = None,
    active_steps: int | None = None,
    num_cycles: int | None = None,
    output_dir: str | None = None,
    rank: int | None = None,
) -> Profiler:
    """A ``torch.profiler.profile`` with torchtune's options, or a :class:`NullProfiler`.

    As in torchtune, ``profile_memory`` turns on ``with_stack`` and ``record_shapes``, a
    schedule key left out takes torchtune's default (wait 5, warmup 5, active 2, 1 cycle),
    and with no activity chosen CPU and CUDA are traced. Activities this build of torch
    cannot trace (CUDA on a CPU-only machine) are left out. Unlike torchtune it returns
    the profiler alone, not a ``(profiler, config)`` pair.

    Args:
        enabled: Profile at all; False returns a :class:`NullProfiler`.
        cpu: Trace CPU operators.
        cuda: Trace CUDA kernels.
        xpu: Trace XPU kernels.
        profile_memory: Record tensor allocations (implies ``with_stack`` and
            ``record_shapes``).
        with_stack: Record source stacks (written as ``rank<R>_stacks.txt``).
        record_shapes: Record operator input shapes.
        with_flops: Estimate FLOPs of matrix multiplications and convolutions.
        wait_steps: Steps skipped before each cycle (``torch.profiler.schedule`` ``wait``).
        warmup_steps: Steps traced but discarded before recording (``warmup``).
        active_steps: Steps recorded per cycle (``active``).
        num_cycles: Cycles (``repeat``; 0 repeats until the run ends).
        output_dir: Folder (local or URI) of the traces; default ``profiler_output``.
        rank: This worker's rank (the recipe passes it); default: the process group's
            rank, or 0 without one.

    Raises:
        ValueError: A negative schedule value, or ``active_steps`` below 1.
    """
    if not enabled:
        return NullProfiler()
    schedule = _schedule(wait_steps, warmup_steps, active_steps, num_cycles)
    with_stack = with_stack or profile_memory
    record_shapes = record_shapes or profile_memory
    if rank is None:
        rank = process_rank()
    mirror = LocalMirror(output_dir or DEFAULT_OUTPUT_DIR, prefix="tunefleet-profile-")
    experimental = torch._C._profiler._ExperimentalConfig(verbose=True) if with_stack else None
    return torch.profiler.profile(
        activities=_activities(cpu, cuda, xpu),
        schedule=torch.profiler.schedule(
            wait=schedule["wait_steps"],
            warmup=schedule["warmup_steps"],
            active=schedule["active_steps"],
            repeat=schedule["num_cycles"],
        ),
        on_trace_ready=TraceWriter(mirror, rank),
        profile_memory=profile_memory,
        with_stack=with_stack,
        record_shapes=record_shapes,
        with_flops=with_flops,
        experimental_config=experimental,
    )


def profiler_from_config(node: Mapping[str, Any] | None, rank: int) -> Profiler:
    """The profiler a config's ``profiler:`` section describes, for the recipe.

    A missing section is a :class:`NullProfiler`; a section without ``_component_`` means
    :func:`setup_torch_profiler`, as in torchtune's recipes.

    Args:
        node: The config's ``profiler`` node (``DictConfig`` or mapping), or None.
        rank: This worker's rank, passed to the component.
    """
    from omegaconf import DictConfig, OmegaConf

    from orchestrator.config import instantiate
    from orchestrator.config.aliases import PROFILER_COMPONENT

    if node is None:
        return NullProfiler()
    # Resolved in place, so ``${output_dir}`` refers to the whole config's key.
    node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return instantiate({"_component_": PROFILER_COMPONENT, **node}, rank=rank)


class TraceWriter:
    """``on_trace_ready`` callback: one rank's artifacts of each finished cycle.

    Args:
        mirror: The (local view of the) profiler's output folder.
        rank: The rank whose files these are (their names start with it).
    """

    def __init__(self, mirror: LocalMirror, rank: int) -> None:
        self.mirror = mirror
        self.rank = rank

    def __call__(self, prof: torch.profiler.profile) -> None:
        """Write the trace, operator table, stacks and memory views of ``prof``'s cycle."""
        directory = self.mirror.path / f"iteration_{prof.step_num}"
        directory.mkdir(parents=True, exist_ok=True)
        begin = time.monotonic()
        torch.profiler.tensorboard_trace_handler(
            str(directory), worker_name=f"rank{self.rank}", use_gzip=True
        )(prof)
        if prof.profile_memory and torch.cuda.is_available() and self.rank == 0:
            try:
                prof.export_memory_timeline(str(directory / "rank0_memory-timeline.html"))
            except Exception as err:  # the timeline export is known to fail on some traces
                log.warning("Could not export the memory timeline: %s", err)
            torch.cuda.memory._dump_snapshot(str(directory / "rank0_memory_snapshot.pickle"))
        cuda = torch.cuda.is_available()
        if prof.with_stack:
            stacks = "self_cuda_time_total" if cuda else "self_cpu_time_total"
            prof.export_stacks(str(directory / f"rank{self.rank}_stacks.txt"), metric=stacks)
        table = prof.key_averages(
            group_by_input_shape=prof.record_shapes, group_by_stack_n=5
        ).table(sort_by="self_device_time_total" if cuda else "self_cpu_time_total", row_limit=25)
        (directory / f"rank{self.rank}_key_averages.txt").write_text(table + os.linesep)
        self.mirror.sync(directory.name)  # this cycle's traces; earlier ones are up
        if self.rank == 0:
            log.info(
                "Profiler traces of step %d written to %s in %.2f s",
                prof.step_num,
                os.path.join(self.mirror.target, directory.name),
                time.monotonic() - begin,
            )


def _schedule(
    wait: int | None, warmup: int | None, active: int | None, cycles: int | None
) -> dict[str, int]:
    given = {
        "wait_steps": wait,
        "warmup_steps": warmup,
        "active_steps": active,
        "num_cycles": cycles,
    }
    schedule = {
        key: DEFAULT_SCHEDULE[key] if value is None else value for key, value in given.items()
    }
    for key, value in schedule.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"profiler.{key} must be an integer >= 0, got {value!r}")
    if schedule["active_steps"] < 1:
        raise ValueError("profiler.active_steps must be >= 1: a cycle has to record something")
    return schedule


def _activities(cpu: bool, cuda: bool, xpu: bool) -> list[ProfilerActivity]:
    wanted = [ProfilerActivity.CPU] * cpu + [ProfilerActivity.CUDA] * cuda
    if xpu and hasattr(ProfilerActivity, "XPU"):
        wanted.append(ProfilerActivity.XPU)
    if not wanted:  # torchtune's fallback
        wanted = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    supported = torch.profiler.supported_activities()
    return [activity for activity in wanted if activity in supported] or [ProfilerActivity.CPU]
