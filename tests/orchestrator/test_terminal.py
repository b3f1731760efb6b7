"""What ``tune run`` shows: a live bar on a terminal, sparse lines in a log, JSON for scripts."""

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.progress import HEADER, LineProgress, format_header
from tests.orchestrator.recipe_fixtures import TINY_MODEL

HEADER_RECORD = {
    HEADER: {
        "model": "modeling.llama3.lora_llama3_tiny",
        "trainable_params": 123_456,
        "total_params": 8_030_261_248,
        "workers": 2,
        "device": "cpu",
        "threads": 4,
        "global_batch": 8,
        "total_steps": 111,
        "first_step": 1,
    }
}


def step_record(step, total=111):
    return {
        "step": step,
        "loss": 5.0 / step,
        "lr": 1e-3,
        "tokens_per_second": 20_000.0,
        "step_time_s": 0.07,
        "total_steps": total,
    }


def test_lines_come_at_about_every_five_percent_of_the_steps():
    out = io.StringIO()
    show = LineProgress(out)
    show(HEADER_RECORD)
    for step in range(1, 112):
        show(step_record(step))
    lines = out.getvalue().splitlines()
    assert lines[:2] == format_header(HEADER_RECORD[HEADER])
    assert lines[0] == (
        "Model modeling.llama3.lora_llama3_tiny: 123.5K trainable of 8.03B parameters (0.00%)"
    )
    assert lines[1] == "2 workers on CPU, 4 threads each, global batch 8, 111 steps"
    steps = [int(line.split()[1].split("/")[0]) for line in lines[2:]]
    assert steps[0] == 1 and steps[-1] == 111
    assert 20 <= len(steps) <= 22  # 111 steps, ~21 lines: one per 5%, plus the first and last
    assert all(b - a <= 6 for a, b in zip(steps, steps[1:], strict=False))
    assert "step 111/111 | loss 0.0450 | lr 1.00e-03 | 20,000 tok/s" in lines[-1]


def read_pty(fd, proc):
    chunks = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks += data
    proc.wait(timeout=30)
    return chunks.decode(errors="replace")


def test_a_terminal_gets_a_live_bar_with_step_loss_rate_and_eta():
    script = textwrap.dedent(
        """
        import time
        from orchestrator.progress import progress_display
        from tests.orchestrator.test_terminal import HEADER_RECORD, step_record
        show = progress_display()  # stderr is the terminal: the live bar is chosen
        print(type(show).__name__, flush=True)
        show(HEADER_RECORD)
        for step in range(1, 41):
            show(step_record(step, total=40))
            time.sleep(0.01)
        show.close()
        """
    )
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=os.getcwd(),
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )
    os.close(terminal)
    text = read_pty(controller, proc)
    os.close(controller)
    assert proc.returncode == 0, text
    assert "BarProgress" in text
    assert "2 workers on CPU, 4 threads each, global batch 8, 111 steps" in text
    assert "\x1b[" in text  # redrawn in place with terminal control sequences
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert "40/40" in plain and "loss 0.1250" in plain and "20,000 tok/s" in plain
    assert "ETA" in plain and "━" in plain  # the bar itself
    assert plain.count("loss ") > 2  # redrawn as the steps arrive, not printed once


@pytest.fixture
def tiny_run_args(demo_assets_dir, tmp_path, ray_cluster):
    return [
        "run",
        "lora_finetune",
        "--config",
        "demo",
        f"output_dir={tmp_path / 'out'}",
        f"demo_assets={demo_assets_dir}",
        "max_steps_per_epoch=20",
        "save_every_n_steps=null",
        *TINY_MODEL,
        "--num-workers",
        "2",
    ]


def test_a_log_gets_the_header_sparse_lines_and_the_summary(tiny_run_args, tmp_path):
    result = CliRunner().invoke(app, tiny_run_args)
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "Model modeling.llama3.lora_llama3: " in err and "trainable of" in err
    # the session cluster's 2 CPUs, one per worker: each worker's torch uses its share
    assert "2 workers on CPU, 1 thread each, global batch 8, 20 steps" in err
    step_lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert step_lines[0].startswith("step 1/20 |") and step_lines[-1].startswith("step 20/20 |")
    assert len(step_lines) == 20  # 20 steps: every step is a 5% step
    assert "Done in " in result.stdout and "20 steps" in result.stdout
    assert f"merged:      {tmp_path / 'out' / 'merged'}" in result.stdout
    # The demo config ends with what the fine-tune taught (base vs tuned answers).
    assert "What is the capital of Italy?" in result.stdout
    assert "Training prompts answered as trained:" in result.stdout


def test_json_prints_one_machine_readable_summary_and_nothing_else(tiny_run_args, tmp_path):
    result = CliRunner().invoke(app, [*tiny_run_args, "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["steps"] == 20 and summary["recipe"] == "lora_finetune"
    assert summary["final_loss"] < summary["first_loss"]
    assert summary["merged_dir"] == str(tmp_path / "out" / "merged")
    assert summary["adapter_dir"] == str(tmp_path / "out" / "adapter")
    demo = summary["demo"]
    assert demo["train"]["total"] == 90 and demo["heldout"]["total"] == 40
    assert 0 <= demo["train"]["accuracy"] <= 1
    assert [row["prompt"] for row in demo["comparisons"]][0] == "What is the capital of Italy?"


def test_quiet_prints_only_the_summary(tiny_run_args):
    result = CliRunner().invoke(app, [*tiny_run_args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.lstrip().startswith("Done in ")
    assert "base model" not in result.stdout
