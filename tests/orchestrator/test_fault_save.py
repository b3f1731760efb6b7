"""A worker SIGKILLed while its checkpoint save is in flight: nothing of the run is lost."""

import threading
import time

import psutil
import pytest
import torch
from safetensors.torch import load_file

from orchestrator import finetune
from orchestrator.training.metric_logger import read_metrics
from tests.orchestrator.recipe_fixtures import FULL_FINETUNE, TINY_MODEL, demo_config

pytestmark = pytest.mark.usefixtures("ray_cluster")

# A full fine-tune wide enough that each rank's DCP save (weights and two AdamW moments,
# ~45 MB in all) is open long enough to be caught writing.
WIDE_FULL = [
    *FULL_FINETUNE,
    "model.embed_dim=384",
    "model.intermediate_dim=1024",
    "model.num_layers=2",
    "optimizer.lr=1e-3",
    "batch_size=2",
    "max_steps_per_epoch=12",
    "save_every_n_steps=4",
]


def kill_a_worker_mid_save(metrics, after_step, killed, caught):
    """Once ``after_step`` is logged, SIGKILL the first worker seen writing a DCP file."""
    deadline = time.time() + 240
    while time.time() < deadline and not killed:
        steps = [r["step"] for r in read_metrics(metrics)]
        if not steps or steps[-1] < after_step:
            time.sleep(0.02)
            continue
        for proc in psutil.process_iter(["cmdline"]):
            if "RayTrainWorker" not in " ".join(proc.info["cmdline"] or []):
                continue
            try:
                writing = [f.path for f in proc.open_files() if f.path.endswith(".distcp")]
            except psutil.Error:
                continue
            if writing:
                proc.kill()  # SIGKILL, mid-write
                killed.append(proc.pid)
                caught.extend(writing)
                return


def _merged(out):
    return load_file(out / "merged" / "model-00001-of-00001.safetensors")


@pytest.fixture(scope="module")
def wide_assets(tmp_path_factory):
    assets = tmp_path_factory.mktemp("wide-assets")
    demo_config(assets, tmp_path_factory.mktemp("unused"), *WIDE_FULL)
    return assets


def _overrides(assets, out, *extra):
    return [f"output_dir={out}", f"demo_assets={assets}", *TINY_MODEL, *WIDE_FULL, *extra]


def test_kill_during_a_checkpoint_save_resumes_to_the_uninterrupted_weights(wide_assets, tmp_path):
    straight = tmp_path / "straight"
    finetune("demo", _overrides(wide_assets, straight), num_workers=2)

    interrupted = tmp_path / "interrupted"
    killed, caught = [], []
    watcher = threading.Thread(
        target=kill_a_worker_mid_save,
        args=(interrupted / "metrics.jsonl", 8, killed, caught),
        daemon=True,
    )
    watcher.start()
    result = finetune("demo", _overrides(wide_assets, interrupted, "max_failures=1"), num_workers=2)
    watcher.join(timeout=1)
    assert killed, "no worker was caught writing its step-8 checkpoint"
    assert caught and all(path.endswith(".distcp") for path in caught)
    # The step-4 checkpoint stayed loadable: the run resumed from it and finished.
    assert result.metrics[-1]["step"] == 12
    steps = [r["step"] for r in read_metrics(interrupted / "metrics.jsonl")]
    assert steps == list(range(1, 13))  # the lost steps were redone, none twice
    expected, actual = _merged(straight), _merged(interrupted)
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-6, rtol=0)
