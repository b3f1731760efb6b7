"""The driver's view of a running fine-tune: the records rank 0 sends, as progress lines.

Rank 0 puts each logged step's metrics on a queue (a Ray actor, so it works whichever
machine rank 0 and the driver are on: ``tune run --address``, ``tune submit``); the
driver takes them off and prints one line each. Nothing is read from a shared disk, and a
resumed run shows only the steps it runs, not the killed run's stale ones.
"""

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class RecordQueue(Protocol):
    """What the follower needs of a queue (``queue.Queue``, ``ray.util.queue.Queue``)."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take one item, raising ``queue.Empty`` after ``timeout`` seconds."""


def follow_records(
    records: RecordQueue, done: threading.Event, poll_s: float = 0.5
) -> Iterator[dict[str, Any]]:
    """Yield records as they arrive until ``done`` is set and the queue is drained.

    A queue that fails (its actor lost with the cluster) ends the following quietly:
    progress lines are a courtesy, the run's outcome is reported elsewhere.
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


def print_progress(
    records: RecordQueue, done: threading.Event, progress: Callable[[str], None]
) -> None:
    """Pass one formatted line per record to ``progress`` until ``done`` and drained."""
    for record in follow_records(records, done):
        progress(format_progress(record, record.get("total_steps")))
