import subprocess
import sys

from typer.testing import CliRunner

from orchestrator.cli import app


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert all(cmd in result.output for cmd in ("run", "generate", "merge", "validate"))


def test_console_script_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tunefleet")


def test_unknown_command_fails_with_nonzero_exit():
    result = CliRunner().invoke(app, ["frobnicate"])
    assert result.exit_code != 0
