"""The torch.profiler integration: traces per rank for the configured steps, none when off."""

import gzip
import json

import pytest
import torch
import torch.multiprocessing as mp

from orchestrator.config import load_config
from orchestrator.recipes.finetune import finetune
from orchestrator.training.profiler import setup_torch_profiler
from orchestrator.training.session import LocalSession
from tests.orchestrator.profiler_worker import profiled_worker
from tests.orchestrator.torchtune_run_fixtures import (
    write_alpaca,
    write_hf_checkpoint,
    write_tokenizer,
)


def trace_steps(path) -> set[str]:
    """The ``ProfilerStep#N`` names recorded in a gzipped Chrome trace."""
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    return {e["name"] for e in events if e.get("name", "").startswith("ProfilerStep#")}


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny matmuls on a shared 2-core machine are fastest that way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_run(tmp_path, *overrides):
    """The demo config on a random tiny Llama 3 (no pretraining): 8 steps of 4 samples."""
    write_hf_checkpoint("llama3", tmp_path / "base")
    return load_config(
        "demo",
        [
            f"output_dir={tmp_path / 'out'}",
            "demo_assets=null",
            f"checkpointer.checkpoint_dir={tmp_path / 'base'}",
            f"tokenizer.path={write_tokenizer('llama3', tmp_path / 'tokenizer')}",
            f"dataset.source={write_alpaca(tmp_path / 'data.json', 32)}",
            "epochs=1",
            *overrides,
        ],
    )


def test_enabled_profiler_in_the_recipe_writes_the_active_steps(tmp_path, one_thread):
    out = tmp_path / "out"
    cfg = tiny_run(
        tmp_path,
        "+profiler._component_=torchtune.training.setup_torch_profiler",
        "+profiler.enabled=True",
        "+profiler.output_dir=${output_dir}/profiling_outputs",
        "+profiler.wait_steps=1",
        "+profiler.warmup_steps=1",
        "+profiler.active_steps=2",
        "+profiler.num_cycles=1",
    )
    finetune(cfg, LocalSession(checkpoint_root=tmp_path / "ckpt"))
    cycles = sorted(p.name for p in (out / "profiling_outputs").iterdir())
    assert cycles == ["iteration_4"]  # steps 3 and 4 recorded, then written
    (trace,) = (out / "profiling_outputs" / "iteration_4").glob("rank0.*.pt.trace.json.gz")
    assert trace_steps(trace) == {"ProfilerStep#2", "ProfilerStep#3"}  # 0-based step numbers
    table = (out / "profiling_outputs" / "iteration_4" / "rank0_key_averages.txt").read_text()
    assert "aten::mm" in table or "aten::addmm" in table


def test_disabled_profiler_writes_nothing(tmp_path, one_thread):
    out = tmp_path / "out"
    cfg = tiny_run(
        tmp_path,
        "max_steps_per_epoch=2",
        "+profiler.enabled=False",
        "+profiler.output_dir=${output_dir}/profiling_outputs",
    )
    finetune(cfg, LocalSession(checkpoint_root=tmp_path / "ckpt"))
    assert not (out / "profiling_outputs").exists()


def test_every_rank_writes_its_own_trace(tmp_path):
    store, traces = tmp_path / "store", tmp_path / "traces"
    mp.spawn(profiled_worker, args=(2, str(store), str(traces)), nprocs=2, join=True)
    cycle = traces / "iteration_2"
    for rank in (0, 1):
        (trace,) = cycle.glob(f"rank{rank}.*.pt.trace.json.gz")
        assert trace_steps(trace) == {"ProfilerStep#1"}
        assert (cycle / f"rank{rank}_key_averages.txt").read_text().strip()


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_bad_schedule_values_name_the_key(value, tmp_path):
    with pytest.raises(ValueError, match=r"profiler.wait_steps must be an integer >= 0"):
        setup_torch_profiler(enabled=True, wait_steps=value, output_dir=str(tmp_path))


def test_with_stack_writes_the_stacks_of_each_rank(tmp_path):
    profiler = setup_torch_profiler(
        enabled=True,
        cuda=False,
        with_stack=True,
        wait_steps=0,
        warmup_steps=1,
        active_steps=1,
        num_cycles=1,
        output_dir=str(tmp_path),
        rank=3,
    )
    profiler.start()
    for _ in range(2):
        torch.ones(16, 16) @ torch.ones(16, 16)
        profiler.step()
    profiler.stop()
    cycle = tmp_path / "iteration_2"
    assert (cycle / "rank3_stacks.txt").exists()
    assert list(cycle.glob("rank3.*.pt.trace.json.gz"))
