"""The driver's view of a running fine-tune: rank 0's records as a header and progress.

Rank 0 puts a header record (model, parameters, workers, global batch, steps) and then each
logged step's metrics on a queue (a Ray actor, so it works whichever machine rank 0 and
the driver are on: ``tune run --address``, ``tune submit``); the driver takes them off and
shows them. On a terminal that is a live progress bar (rich, as ``transformers`` and
``accelerate`` users know it); in a log or a pipe, a line at about every 5% of the steps.
Nothing is read from a shared disk, and a resumed run shows only the steps it runs.
"""

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import nn

HEADER = "header"  # the key of the record that describes a run before its first step
LINES_PER_RUN = 20  # non-interactive output: a line at about every 5% of the steps


class RecordQueue(Protocol):
    """What the follower needs of a queue (``queue.Queue``, ``ray.util.queue.Queue``)."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take one item, raising ``queue.Empty`` after ``timeout`` seconds."""


def header_record(
    cfg, model: "nn.Module", *, world_size: int, device: str, total_steps: int, first_step: int
) -> dict[str, Any]:
    """The record a run's progress starts with: what is trained, where, and for how long.

    Args:
        cfg: The run's config.
        model: The (sharded) model; ``DTensor`` shards count at their global size.
        world_size: Ray Train workers.
        device: ``cpu`` or ``cuda``.
        total_steps: Optimizer steps of the whole run.
        first_step: The step this run starts at (after a resume, not 1).
    """
    import torch

    params = list(model.parameters())
    global_batch = (
        int(cfg.batch_size) * int(cfg.get("gradient_accumulation_steps", 1) or 1) * world_size
    )
    return {
        HEADER: {
            "model": str(cfg.model.get("_component_", "?")),
            "trainable_params": sum(p.numel() for p in params if p.requires_grad),
            "total_params": sum(p.numel() for p in params),
            "workers": world_size,
            "device": device,
            "threads": torch.get_num_threads(),  # a CPU worker's compute: its threads
            "global_batch": global_batch,
            "total_steps": total_steps,
            "first_step": first_step,
        }
    }


def follow_records(
    records: RecordQueue, done: threading.Event, poll_s: float = 0.5
) -> Iterator[dict[str, Any]]:
    """Yield records as they arrive until ``done`` is set and the queue is drained.

    A queue that fails (its actor lost with the cluster) ends the following quietly:
    progress is a courtesy, the run's outcome is reported elsewhere.
    """
    while True:
        finished = done.is_set()
        try:
            yield records.get(timeout=0 if finished else poll_s)
        except queue.Empty:
            if finished:
                return
        except Exception:  # noqa: BLE001 - e.g. ray.exceptions.RayActorError
            return


def print_progress(
    records: RecordQueue, done: threading.Event, progress: Callable[[dict[str, Any]], None]
) -> None:
    """Pass each record to ``progress`` until ``done`` is set and the queue is drained."""
    for record in follow_records(records, done):
        progress(record)


def format_count(n: int) -> str:
    """``8030261248`` -> ``8.03B``, ``491520`` -> ``491.5K``."""
    for size, unit in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= size:
            return f"{n / size:.{2 if unit in 'TB' else 1}f}{unit}"
    return str(n)


def format_header(header: dict[str, Any]) -> list[str]:
    """The run header as two lines."""
    share = header["trainable_params"] / max(header["total_params"], 1)
    workers = header["workers"]
    workers = f"{workers} worker{'s' if workers != 1 else ''}"
    if header["device"] == "cpu":
        threads = header.get("threads")
        each = f", {threads} thread{'s' if threads != 1 else ''} each" if threads else ""
        where = f"{workers} on CPU{each}"
    else:
        where = f"{workers} x 1 GPU"
    resumed = f" (resuming at {header['first_step']})" if header["first_step"] > 1 else ""
    return [
        f"Model {header['model']}: {format_count(header['trainable_params'])} trainable of "
        f"{format_count(header['total_params'])} parameters ({share:.2%})",
        f"{where}, global batch {header['global_batch']}, {header['total_steps']} steps{resumed}",
    ]


def format_eta(seconds: float) -> str:
    """``h:mm:ss``."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


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
        parts.append(f"ETA {format_eta(record['step_time_s'] * max(0, total_steps - step))}")
    return " | ".join(parts)


class LineProgress:
    """Progress for logs and pipes: the header, then a line at about every 5% of the steps.

    The first and last steps always get a line; so a 111-step run prints about 20 lines,
    not 111.

    Args:
        stream: Where lines go (stderr by default, keeping stdout for the summary).
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._shown_bucket = -1

    def __call__(self, record: dict[str, Any]) -> None:
        """Show one record."""
        if HEADER in record:
            self._write("\n".join(format_header(record[HEADER])))
            return
        total = record.get("total_steps")
        step = record["step"]
        bucket = step * LINES_PER_RUN // total if total else step
        if bucket != self._shown_bucket or step == total:
            self._shown_bucket = bucket
            self._write(format_progress(record, total))

    def close(self) -> None:
        """Nothing is left open."""

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class BarProgress:
    """Progress on a terminal: the header, then a live bar with loss, tokens/s and ETA.

    Args:
        stream: The terminal (stderr by default).
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=stream or sys.stderr)
        self.progress = Progress(
            TextColumn("[bold]step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("loss [cyan]{task.fields[loss]}"),
            TextColumn("{task.fields[rate]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task = None

    def __call__(self, record: dict[str, Any]) -> None:
        """Show one record."""
        if HEADER in record:
            for line in format_header(record[HEADER]):
                self.console.print(line, highlight=False)
            return
        fields = {
            "loss": f"{record['loss']:.4f}",
            "rate": f"{record.get('tokens_per_second', 0):,.0f}",
        }
        if self._task is None:
            self.progress.start()
            self._task = self.progress.add_task(
                "train", total=record.get("total_steps"), completed=record["step"] - 1, **fields
            )
        self.progress.update(self._task, completed=record["step"], **fields)

    def close(self) -> None:
        """Stop the live display, leaving the finished bar on screen."""
        if self._task is not None:
            self.progress.stop()


def progress_display(
    stream: IO[str] | None = None, interactive: bool | None = None
) -> LineProgress | BarProgress:
    """A live bar when ``stream`` (default stderr) is a terminal, progress lines otherwise."""
    stream = stream or sys.stderr
    if interactive is None:
        interactive = stream.isatty()
    return BarProgress(stream) if interactive else LineProgress(stream)
