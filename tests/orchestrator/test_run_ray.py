"""The recipe on a real local Ray cluster: FSDP2 over workers, fault tolerance, the CLI."""

import json
import re
import threading
import time

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from orchestrator import finetune
from orchestrator.cli import app
from orchestrator.launcher import FINISHED_MARKER, LaunchError
from tests.orchestrator.recipe_fixtures import TINY_MODEL, kill_a_worker_once_past

pytestmark = pytest.mark.usefixtures("ray_cluster")


def overrides(assets, out, *extra):
    return [f"output_dir={out}", f"demo_assets={assets}", *TINY_MODEL, *extra]


def adapter(out):
    return load_file(out / "adapter" / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def two_worker_run(demo_assets_dir, tmp_path_factory):
    """A 2-worker FSDP2 LoRA run: 3 samples per worker, checkpoint every 10 of 30 steps."""
    out = tmp_path_factory.mktemp("two")
    result = finetune(
        "demo",
        overrides(
            demo_assets_dir, out, "batch_size=3", "max_steps_per_epoch=30", "save_every_n_steps=10"
        ),
        num_workers=2,
    )
    return out, result


def test_two_workers_match_one_worker_with_the_same_global_batch(
    two_worker_run, demo_assets_dir, tmp_path
):
    out2, result2 = two_worker_run
    result1 = finetune(
        "demo",
        overrides(
            demo_assets_dir,
            tmp_path,
            "batch_size=6",
            "max_steps_per_epoch=30",
            "save_every_n_steps=null",
        ),
        num_workers=1,
    )
    losses1 = [m["loss"] for m in result1.metrics]
    losses2 = [m["loss"] for m in result2.metrics]
    assert len(losses2) == 30 and losses2[-1] < losses2[0] - 0.3
    assert losses1 == pytest.approx(losses2, abs=1e-4)
    assert result2.adapter_dir == out2 / "adapter"
    assert (result2.merged_dir / "model.safetensors.index.json").exists()


def test_killed_worker_resumes_to_the_same_adapter(two_worker_run, demo_assets_dir, tmp_path):
    reference_out, _ = two_worker_run
    metrics = tmp_path / "metrics.jsonl"
    killed = []

    watcher = threading.Thread(
        target=kill_a_worker_once_past, args=(metrics, 12, killed), daemon=True
    )
    watcher.start()
    result = finetune(
        "demo",
        overrides(
            demo_assets_dir,
            tmp_path,
            "batch_size=3",
            "max_steps_per_epoch=30",
            "save_every_n_steps=10",
            "max_failures=1",
        ),
        num_workers=2,
    )
    watcher.join(timeout=1)
    assert killed, "the run finished before a worker could be killed"
    assert result.metrics[-1]["step"] == 30
    expected, actual = adapter(reference_out), adapter(tmp_path)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-6, rtol=0)


def test_failed_run_resumes_when_started_again_with_its_run_name(
    two_worker_run, demo_assets_dir, tmp_path
):
    reference_out, _ = two_worker_run
    args = overrides(
        demo_assets_dir,
        tmp_path,
        "batch_size=3",
        "max_steps_per_epoch=30",
        "save_every_n_steps=10",
        "max_failures=0",
        "run_name=again",
    )
    killed = []
    watcher = threading.Thread(
        target=kill_a_worker_once_past, args=(tmp_path / "metrics.jsonl", 12, killed), daemon=True
    )
    watcher.start()
    with pytest.raises(LaunchError):
        finetune("demo", args, num_workers=2)
    assert killed and not (tmp_path / "adapter").exists()
    result = finetune("demo", args, num_workers=2)  # the same command again
    assert [m["step"] for m in result.metrics] == list(range(1, 31))
    expected, actual = adapter(reference_out), adapter(tmp_path)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-6, rtol=0)
    # Marked finished, so launching this name again starts a new run (tested in test_launcher).
    assert (result.checkpoint_dir / FINISHED_MARKER).exists()


def test_torchtune_style_config_runs_unchanged(demo_assets_dir, tmp_path):
    data = tmp_path / "alpaca.json"
    data.write_text(
        json.dumps(
            [
                {"instruction": f"Repeat the word {w}.", "input": "", "output": w}
                for w in ["apple", "river", "stone", "cloud"] * 8
            ]
        )
    )
    config = tmp_path / "torchtune.yaml"
    config.write_text(f"""
output_dir: {tmp_path / "out"}
model:
  _component_: torchtune.models.llama3.lora_llama3
  lora_attn_modules: [q_proj, v_proj]
  vocab_size: 768
  num_layers: 1
  num_heads: 4
  num_kv_heads: 2
  embed_dim: 64
  intermediate_dim: 128
  max_seq_len: 128
  lora_rank: 4
  lora_alpha: 8
tokenizer:
  _component_: torchtune.models.llama3.llama3_tokenizer
  path: {demo_assets_dir}/tokenizer.model
checkpointer:
  _component_: torchtune.training.FullModelHFCheckpointer
  checkpoint_dir: {demo_assets_dir}/model
  checkpoint_files: [model.safetensors]
  recipe_checkpoint: null
  output_dir: ${{output_dir}}
  model_type: LLAMA3
resume_from_checkpoint: False
dataset:
  _component_: torchtune.datasets.alpaca_dataset
  source: json
  data_files: {data}
seed: 1
shuffle: True
batch_size: 4
optimizer:
  _component_: torch.optim.AdamW
  lr: 3e-3
lr_scheduler:
  _component_: torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup
  num_warmup_steps: 1
loss:
  _component_: torchtune.modules.loss.CEWithChunkedOutputLoss
epochs: 1
max_steps_per_epoch: null
gradient_accumulation_steps: 1
device: cpu
dtype: fp32
enable_activation_checkpointing: True
metric_logger:
  _component_: torchtune.training.metric_logging.DiskLogger
  log_dir: ${{output_dir}}
log_every_n_steps: 1
""")
    result = finetune(str(config), recipe="lora_finetune_distributed", num_workers=2)
    assert [m["step"] for m in result.metrics] == [1, 2, 3, 4]
    assert (result.adapter_dir / "adapter_config.json").exists()


def test_cli_run_prints_the_summary_and_generate_answers(demo_assets_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "run",
            "lora_finetune",
            "--config",
            "demo",
            *overrides(
                demo_assets_dir, tmp_path, "max_steps_per_epoch=6", "+model.quantize_base=True"
            ),
            "--num-workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "adapter:" in result.output and str(tmp_path / "merged") in result.output
    losses = [json.loads(x)["loss"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    answer = runner.invoke(
        app,
        [
            "generate",
            "--config",
            "demo",
            "--prompt",
            "Add 2 and 3.",
            "--max-new-tokens",
            "5",
            *overrides(demo_assets_dir, tmp_path),
        ],
    )
    assert answer.exit_code == 0, answer.output
    assert answer.output.strip()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "lora_finetuen", "--config", "demo"], r"unknown recipe 'lora_finetuen'"),
        (["run", "lora_finetune", "--config", "demo", "batch_sise=2"], r"batch_sise"),
        (
            [
                "run",
                "lora_finetune",
                "--config",
                "demo",
                "checkpointer.checkpoint_dir=/nonexistent/ckpt",
            ],
            r"/nonexistent/ckpt",
        ),
        (
            ["run", "lora_finetune", "--config", "demo", "--gpus-per-worker", "1"],
            r"cannot host this run.*GPUs",
        ),
        (
            ["run", "lora_finetune", "--config", "demo", "--num-workers", "7"],
            r"7 workers need 7 CPUs, the cluster has 2",
        ),
        (
            ["run", "lora_finetune", "--config", "demo", "num_workers=0"],
            r"num_workers must be at least 1, got 0",
        ),
    ],
)
def test_bad_runs_fail_fast_with_a_clear_message(args, message, demo_assets_dir, tmp_path):
    started = time.time()
    result = CliRunner().invoke(
        app, [*args, f"output_dir={tmp_path}", f"demo_assets={demo_assets_dir}", *TINY_MODEL]
    )
    assert result.exit_code == 1
    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output
    assert time.time() - started < 30


def test_unwritable_output_dir_is_named(demo_assets_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(
        app,
        ["run", "lora_finetune", "--config", "demo", *overrides(demo_assets_dir, blocker / "out")],
    )
    assert result.exit_code == 1
    assert "is not writable" in result.output and str(blocker / "out") in result.output


def test_nan_loss_fails_the_run_and_names_the_step(demo_assets_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "run",
            "lora_finetune",
            "--config",
            "demo",
            *overrides(
                demo_assets_dir, tmp_path, "optimizer.lr=1e30", "~clip_grad_norm", "max_failures=0"
            ),
            "--num-workers",
            "1",
        ],
    )
    assert result.exit_code == 1
    assert "at step" in result.output and "Loss is" in result.output, result.output


def test_a_cpu_run_gives_every_core_to_its_workers():
    from orchestrator.launcher import _check_resources, _cpus_per_worker

    assert _check_resources(None, 0) == 1  # by default one worker per CPU node
    assert _cpus_per_worker(1, 0) == 2  # the session cluster has 2 CPUs
    assert _cpus_per_worker(2, 0) == 1
    assert _cpus_per_worker(1, 1) == 1  # a GPU worker computes on its GPU
