"""Training metrics on rank 0: one JSON line per step in ``metrics.jsonl``, a loss-curve PNG.

The driver follows the file to draw progress (:mod:`orchestrator.progress`).
"""

import json
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
LOSS_CURVE_FILE = "loss_curve.png"


class MetricLogger:
    """Appends each step's metrics to ``<output_dir>/metrics.jsonl`` (rank 0 only).

    Every line is flushed as it is written, so the launcher can follow the file to draw
    the live progress line, and a crashed run keeps everything it logged.

    Args:
        output_dir: The run's output directory.
        **ignored: Arguments of torchtune's loggers (``log_dir``, ``project``, ...), which
            configs map to this logger; they do not change where metrics go.
    """

    def __init__(self, output_dir: str | Path, **ignored: Any) -> None:
        self.path = Path(output_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def start(self, first_step: int) -> None:
        """Begin logging at ``first_step``; lines of later steps (from a lost run) are dropped."""
        kept = [r for r in read_metrics(self.path) if r["step"] < first_step]
        with open(self.path, "w") as f:
            for record in kept:
                f.write(json.dumps(record) + "\n")

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one step's metrics."""
        with open(self.path, "a") as f:
            f.write(json.dumps(metrics) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a metrics file (a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_loss_curve(metrics_path: str | Path, png_path: str | Path) -> Path:
    """Draw loss against step from a metrics file into a PNG; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([r["step"] for r in records], [r["loss"] for r in records], color="#1f77b4")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)
