"""Read many byte ranges of one object: coalesced, concurrent, retried.

Sliced safetensors reads (the header once, then only the rows a rank owns) turn into
many small ``(offset, length)`` ranges. Each GET to an object store costs a round trip, so
ranges closer than ``max_gap`` are merged into one request (reading the gap is cheaper
than another request), requests are capped at ``max_request`` bytes so a large slice
still downloads in parallel, and up to ``max_workers`` requests run at once. Transient
failures (5xx, throttling, resets, timeouts) are retried with exponential backoff;
403/404 and unreachable endpoints are not, and surface as the clear storage errors.
"""

from __future__ import annotations

import bisect
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from modeling.storage.errors import is_transient, translate
from modeling.storage.filesystems import open_input, storage_errors

T = TypeVar("T")

MAX_WORKERS = 8
MAX_GAP = 1 << 20
MAX_REQUEST = 64 << 20
ATTEMPTS = 4
BASE_DELAY_S = 0.1
MAX_DELAY_S = 2.0


@dataclass(frozen=True)
class Span:
    """One request: ``length`` bytes from ``offset``, covering some of the asked ranges."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.offset + self.length


def coalesce(
    ranges: Sequence[tuple[int, int]], *, max_gap: int = MAX_GAP, max_request: int = MAX_REQUEST
) -> list[Span]:
    """The requests that cover ``ranges``: near ranges merged, long ones split.

    Args:
        ranges: ``(offset, length)`` pairs, in any order, possibly overlapping.
        max_gap: Ranges separated by fewer bytes than this share one request (touching or
            overlapping ranges always do).
        max_request: Merged runs longer than this are split into requests of this size,
            so one large slice still downloads in parallel.

    Returns:
        Non-overlapping spans sorted by offset; empty ranges need none.
    """
    merged: list[list[int]] = []
    for offset, length in sorted((o, n) for o, n in ranges if n > 0):
        if offset < 0:
            raise ValueError(f"Byte range offset must be >= 0, got {offset}")
        if merged and (offset <= merged[-1][1] or offset - merged[-1][1] < max_gap):
            merged[-1][1] = max(merged[-1][1], offset + length)
        else:
            merged.append([offset, offset + length])
    return [
        Span(start, min(max_request, end - start))
        for begin, end in merged
        for start in range(begin, end, max_request)
    ]


def with_retries(
    fn: Callable[[], T],
    uri: str,
    *,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY_S,
    max_delay: float = MAX_DELAY_S,
) -> T:
    """Call ``fn``, retrying transient errors with exponential backoff and jitter.

    Raises:
        StorageError: The translated error once ``fn`` fails permanently or ``attempts``
            tries are used up.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as err:
            if attempt + 1 < attempts and is_transient(err):
                delay = min(max_delay, base_delay * 2**attempt)
                time.sleep(delay * random.uniform(0.5, 1.0))
                continue
            new = translate(err, uri)
            if new is err:
                raise
            raise new from None
    raise AssertionError("unreachable")


class RangeReader:
    """Byte ranges of one object through one open handle (one metadata request).

    Args:
        uri: Local path or URI of the object.
        max_workers: Requests in flight at once.
        max_gap: See :func:`coalesce`.
        max_request: See :func:`coalesce`.
        attempts: Tries per request, counting the first (see :func:`with_retries`).

    Example::

        with RangeReader("s3://b/model.safetensors") as reader:
            (head,) = reader.read([(0, 8)])
            header_len = int.from_bytes(head, "little")
            (header,) = reader.read([(8, header_len)])
            rows = reader.read(row_ranges)
    """

    def __init__(
        self,
        uri: str | os.PathLike,
        *,
        max_workers: int = MAX_WORKERS,
        max_gap: int = MAX_GAP,
        max_request: int = MAX_REQUEST,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.uri = os.fspath(uri)
        self.max_workers, self.max_gap, self.max_request = max_workers, max_gap, max_request
        self.attempts = attempts
        self._file = with_retries(lambda: open_input(self.uri), self.uri, attempts=attempts)
        with storage_errors(self.uri):
            self.size = self._file.size()

    def _fetch(self, span: Span) -> bytes:
        def read() -> bytes:
            data = self._file.read_at(span.length, span.offset)
            if len(data) != span.length:
                raise ValueError(
                    f"Short read of {self.uri}: asked {span.length} bytes at {span.offset}, "
                    f"got {len(data)} (the object is {self.size} bytes; it may have changed)"
                )
            return data

        return with_retries(read, self.uri, attempts=self.attempts)

    def read(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(offset, length)`` range, in the order given.

        Raises:
            ValueError: When a range ends past the end of the object.
        """
        for offset, length in ranges:
            if offset + length > self.size:
                raise ValueError(
                    f"Byte range ({offset}, {length}) ends past the end of {self.uri} "
                    f"({self.size} bytes)"
                )
        spans = coalesce(ranges, max_gap=self.max_gap, max_request=self.max_request)
        workers = max(1, min(self.max_workers, len(spans)))
        if workers == 1:
            blobs = [self._fetch(s) for s in spans]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                blobs = list(pool.map(self._fetch, spans))
        starts = [s.offset for s in spans]
        out = []
        for offset, length in ranges:
            out.append(_slice(spans, blobs, starts, offset, length))
        return out

    def close(self) -> None:
        """Close the handle."""
        self._file.close()

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _slice(spans: list[Span], blobs: list[bytes], starts: list[int], offset: int, length: int):
    """Cut one asked range out of the fetched spans (it may cross split spans)."""
    if length <= 0:
        return b""
    i = bisect.bisect_right(starts, offset) - 1
    parts, need, pos = [], length, offset
    while need > 0:
        span, blob = spans[i], blobs[i]
        take = min(need, span.end - pos)
        parts.append(blob[pos - span.offset : pos - span.offset + take])
        need, pos, i = need - take, pos + take, i + 1
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_ranges(
    uri: str | os.PathLike,
    ranges: Sequence[tuple[int, int]],
    *,
    max_workers: int = MAX_WORKERS,
    max_gap: int = MAX_GAP,
) -> list[bytes]:
    """The bytes of each ``(offset, length)`` range of one object, in the order given.

    A one-shot :class:`RangeReader`; keep a reader open to read an object several times.
    """
    with RangeReader(uri, max_workers=max_workers, max_gap=max_gap) as reader:
        return reader.read(ranges)
