"""Read-only access to hf:// URIs through :class:`huggingface_hub.HfFileSystem`.

huggingface_hub reads ``HF_ENDPOINT`` once, at import, so the endpoint and ``HF_TOKEN`` are
read here at call time and passed explicitly. Reads of byte ranges go to the Hub as
ranged GETs on ``resolve/`` URLs (the Hub answers 206), opened with fsspec's ``"none"``
cache so each read fetches exactly the bytes asked for, not a 5 MiB read-ahead block.
"""

from __future__ import annotations

import os
import threading

from huggingface_hub import HfFileSystem

from modeling.storage.uri import StorageUri, hf_revision_text


def hf_endpoint() -> str | None:
    """``HF_ENDPOINT`` now (None: huggingface_hub's default, https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT") or None


def hf_filesystem() -> HfFileSystem:
    """The fsspec Hub file system for the current ``HF_ENDPOINT`` and ``HF_TOKEN``.

    huggingface_hub caches instances per arguments, so repeated calls are cheap and
    share listings.
    """
    return HfFileSystem(endpoint=hf_endpoint(), token=os.environ.get("HF_TOKEN") or None)


def hf_path(parsed: StorageUri) -> str:
    """The path :class:`HfFileSystem` takes for a parsed hf:// URI (its URI minus ``hf://``)."""
    prefix = "" if parsed.repo_type == "model" else f"{parsed.repo_type}s/"
    revision = "" if parsed.revision is None else f"@{hf_revision_text(parsed.revision)}"
    path = f"{prefix}{parsed.bucket}{revision}"
    return f"{path}/{parsed.key}" if parsed.key else path


class HubInputFile:
    """A random-access Hub file whose ``read_at`` may be called from many threads at once.

    Each thread gets its own fsspec file (a file keeps a position, so one cannot serve two
    threads); opening one costs no request once the repo listing is cached.

    Args:
        fs: The Hub file system.
        path: The file's path in ``fs`` (see :func:`hf_path`).
    """

    def __init__(self, fs: HfFileSystem, path: str) -> None:
        self._fs, self._path = fs, path
        self._local = threading.local()
        self._handles: list = []
        self._lock = threading.Lock()
        self._size = int(self._handle().size)
        self._pos = 0
        self.closed = False

    def _handle(self):
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._fs.open(self._path, "rb", cache_type="none")
            self._local.handle = handle
            with self._lock:
                self._handles.append(handle)
        return handle

    def size(self) -> int:
        """The file's size in bytes."""
        return self._size

    def read_at(self, nbytes: int, offset: int) -> bytes:
        """``nbytes`` bytes from ``offset`` (fewer at the end of the file), one ranged GET."""
        if nbytes <= 0 or offset >= self._size:
            return b""
        handle = self._handle()
        handle.seek(offset)
        return handle.read(min(nbytes, self._size - offset))

    def read(self, nbytes: int = -1) -> bytes:
        """Read from the current position (all that is left by default)."""
        if nbytes is None or nbytes < 0:
            nbytes = self._size - self._pos
        data = self.read_at(nbytes, self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position used by :meth:`read`."""
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        """The position used by :meth:`read`."""
        return self._pos

    def close(self) -> None:
        """Close every thread's handle."""
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            handle.close()
        self.closed = True

    def __enter__(self) -> HubInputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
