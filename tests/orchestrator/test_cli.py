import subprocess
import sys

from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.demo import run


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


def test_console_script_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tunefleet")


def test_demo_learns_merges_exactly_and_decodes():
    lines = []
    out = run(steps=150, log=lines.append)
    assert out["losses"][-1] < 0.5 * out["losses"][0]
    assert out["merge_error"] < 1e-4
    matches = sum(a == b for a, b in zip(out["completion"], out["expected"], strict=True))
    assert matches >= 5  # the copy task is learned (7/7 on this machine)
    assert any(line.startswith("completion") for line in lines)


def test_unknown_command_fails_with_nonzero_exit():
    result = CliRunner().invoke(app, ["frobnicate"])
    assert result.exit_code != 0
