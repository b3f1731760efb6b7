"""Training metrics: one JSON line per step, a live progress line, a loss-curve PNG."""

import json
import time
from collections.abc import Iterator
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


def follow_metrics(path: Path, stop, poll_s: float = 0.5) -> Iterator[dict[str, Any]]:
    """Yield new records of a growing metrics file until ``stop()`` is true.

    Only bytes appended since the last poll are read, so a long run costs nothing extra
    per poll. When the file shrinks (a resumed run rewrote it) it is read from the start.
    """
    offset, pending = 0, b""
    while True:
        done = stop()
        size = path.stat().st_size if path.exists() else 0
        if size < offset:
            offset, pending = 0, b""
        if size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                pending += f.read(size - offset)
            offset = size
            *lines, pending = pending.split(b"\n")  # a torn last line waits for the rest
            for line in lines:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
        if done:
            return
        time.sleep(poll_s)


def format_progress(record: dict[str, Any], total_steps: int | None) -> str:
    """One terminal line: step, loss, learning rate, tokens/s and the time left."""
    step = record["step"]
    parts = [f"step {step}" + (f"/{total_steps}" if total_steps else "")]
    parts.append(f"loss {record['loss']:.4f}")
    if "lr" in record:
        parts.append(f"lr {record['lr']:.2e}")
    if "tokens_per_second" in record:
        parts.append(f"{record['tokens_per_second']:,.0f} tok/s")
    if record.get("peak_memory_gib") is not None:
        parts.append(f"mem {record['peak_memory_gib']:.2f} GiB")
    if total_steps and record.get("step_time_s"):
        eta = int(record["step_time_s"] * max(0, total_steps - step))
        parts.append(f"ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}")
    return " | ".join(parts)


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
