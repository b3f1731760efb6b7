"""The driver's view of a running fine-tune: follow rank 0's metrics, print progress lines."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


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


def print_progress(path: Path, done: threading.Event, progress: Callable[[str], None]) -> None:
    """Pass one formatted line per new metrics record to ``progress`` until ``done`` is set."""
    for record in follow_metrics(path, stop=done.is_set):
        progress(format_progress(record, record.get("total_steps")))
