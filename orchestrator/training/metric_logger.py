"""Training metrics on rank 0: one JSON line per step in ``metrics.jsonl``, a loss-curve PNG.

``output_dir`` may be a URI: then the file is kept in node-local scratch and uploaded
whole at each :meth:`MetricLogger.flush` (every checkpoint and the end of the run); the
driver draws live progress from the records the session sends it, not from this file.
A config's ``metric_logger`` (torchtune's ``DiskLogger``, ``WandBLogger``,
``TensorBoardLogger``, ...; see :mod:`orchestrator.training.logger_backends`) gets every
logged step too.
"""

import io
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from modeling.storage.paths import StoragePath, as_path
from orchestrator.training.logger_backends import LoggerBackend

METRICS_FILE = "metrics.jsonl"
LOSS_CURVE_FILE = "loss_curve.png"


class MetricLogger:
    """Appends each step's metrics to ``<output_dir>/metrics.jsonl`` (rank 0 only).

    Every line is flushed to the local file as it is written, so a crashed run keeps
    everything it logged; a remote ``output_dir`` gets the file at each :meth:`flush`.

    Args:
        output_dir: The run's output directory (local path or URI).
        backend: A torchtune-style logger (``log_dict``, ``close``) that gets each logged
            step's numbers as well, e.g. the config's ``metric_logger``.
    """

    def __init__(self, output_dir: str | Path, backend: LoggerBackend | None = None) -> None:
        self.backend = backend
        self.target = as_path(output_dir) / METRICS_FILE
        if isinstance(self.target, StoragePath):
            self.path = Path(tempfile.mkdtemp(prefix="tunefleet-metrics-")) / METRICS_FILE
        else:
            self.path = self.target
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def start(self, first_step: int) -> None:
        """Begin logging at ``first_step``; lines of later steps (from a lost run) are dropped."""
        kept = [r for r in read_metrics(self.target) if r["step"] < first_step]
        with open(self.path, "w") as f:
            for record in kept:
                f.write(json.dumps(record) + "\n")
        self.flush()

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one step's metrics; the backend gets its numbers (all but ``step``)."""
        with open(self.path, "a") as f:
            f.write(json.dumps(metrics) + "\n")
        if self.backend is not None:
            scalars = {
                key: value
                for key, value in metrics.items()
                if key != "step" and isinstance(value, int | float) and not isinstance(value, bool)
            }
            self.backend.log_dict(scalars, step=metrics["step"])

    def flush(self) -> None:
        """Upload the file when ``output_dir`` is a URI (locally it is always current)."""
        if self.path != self.target:
            self.target.write_bytes(self.path.read_bytes())
        flush_backend = getattr(self.backend, "flush", None)
        if flush_backend is not None:
            flush_backend()

    def close(self) -> None:
        """Flush, then close the backend (its run ends: nothing is logged after)."""
        self.flush()
        if self.backend is not None:
            self.backend.close()
            self.backend = None


def metric_logger_for(cfg: DictConfig) -> MetricLogger:
    """Rank 0's logger of a run: ``metrics.jsonl`` plus the config's ``metric_logger``.

    The ``metric_logger`` component (when the config has one) is built here, on rank 0
    only as in torchtune's recipes, and records the config with ``log_config``.
    """
    from orchestrator.config import instantiate

    backend = instantiate(cfg.metric_logger) if cfg.get("metric_logger") is not None else None
    if backend is not None:
        backend.log_config(cfg)
    return MetricLogger(cfg.output_dir, backend=backend)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a metrics file, local or behind a URI (a torn line is skipped)."""
    path = as_path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_loss_curve(metrics_path: str | Path, png_path: str | Path) -> Path | StoragePath | None:
    """Draw loss against step from a metrics file into a PNG (either may be a URI).

    matplotlib is a dependency of the package, but the recipe also runs in-process on bare
    machines that lack it (``bench/gpu_check.py``): there the curve is left out with a
    warning, and None returned, rather than failing a finished run at its last line.
    """
    try:
        import matplotlib
    except ImportError:
        warnings.warn(
            f"matplotlib cannot be imported: no {Path(str(png_path)).name} "
            "(pip install matplotlib); the metrics file has the same losses",
            stacklevel=2,
        )
        return None

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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    target = as_path(png_path)
    target.write_bytes(buffer.getvalue())
    return target
