"""What ``tune run`` prints when a run ends: a summary for people, or one JSON object."""

from typing import Any

from orchestrator.launcher import FinetuneResult
from orchestrator.training.metric_logger import LOSS_CURVE_FILE, METRICS_FILE


def run_summary(
    result: FinetuneResult, *, recipe: str, config: str, seconds: float
) -> dict[str, Any]:
    """The run's outcome as JSON-ready data (``tune run --json``)."""
    first = result.metrics[0] if result.metrics else {}
    last = result.metrics[-1] if result.metrics else {}
    return {
        "recipe": recipe,
        "config": config,
        "seconds": round(seconds, 1),
        "steps": last.get("step", 0),
        "first_loss": first.get("loss"),
        "final_loss": last.get("loss"),
        "output_dir": str(result.output_dir),
        "adapter_dir": None if result.adapter_dir is None else str(result.adapter_dir),
        "merged_dir": str(result.merged_dir),
        "metrics_file": str(result.output_dir / METRICS_FILE),
        "loss_curve": str(result.output_dir / LOSS_CURVE_FILE),
        "checkpoint_dir": str(result.checkpoint_dir),
    }


def format_summary(summary: dict[str, Any]) -> list[str]:
    """The summary as terminal lines: time, steps and loss, then where everything is."""
    nan = float("nan")
    first = nan if summary["first_loss"] is None else summary["first_loss"]
    final = nan if summary["final_loss"] is None else summary["final_loss"]
    lines = [
        f"Done in {summary['seconds']:.0f}s: {summary['steps']} steps, "
        f"loss {first:.4f} -> {final:.4f}"
    ]
    if summary["adapter_dir"]:
        lines.append(f"  adapter:     {summary['adapter_dir']}")
    lines += [
        f"  merged:      {summary['merged_dir']}",
        f"  metrics:     {summary['metrics_file']}",
        f"  loss curve:  {summary['loss_curve']}",
        f"  checkpoints: {summary['checkpoint_dir']}",
    ]
    return lines
