"""A ``pathlib``-shaped handle on a storage URI, so code written for paths reads URIs too.

Checkpoint discovery, readers and writers were written against :class:`pathlib.Path`
(``directory / name``, ``.name``, ``.suffix``, ``.is_file()``, ``.glob()``,
``.read_text()``). :func:`as_path` gives a local :class:`~pathlib.Path` for a local path
and a :class:`StoragePath` for ``s3://``, ``gs://`` or ``hf://``, which answers the same
calls through :mod:`modeling.storage`. ``str()`` of either is the location as the user
wrote it, so messages and results name the URI, never a mangled ``s3:/`` path.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from modeling.storage import filesystems as fs
from modeling.storage.uri import is_remote, join, name, parent


class StoragePath:
    """A remote object or prefix, with the subset of ``pathlib.Path`` the readers use.

    Object stores have no directories: a "directory" is a prefix that has objects under
    it, and :meth:`mkdir` does nothing.

    Args:
        uri: ``s3://bucket/key``, ``gs://bucket/key`` or ``hf://namespace/repo[/path]``.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/") if not uri.endswith("://") else uri

    def __truediv__(self, part: str | os.PathLike) -> StoragePath:
        return StoragePath(join(self.uri, os.fspath(part)))

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"StoragePath({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoragePath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __lt__(self, other: StoragePath) -> bool:
        return self.uri < other.uri

    @property
    def name(self) -> str:
        """The last part of the URI."""
        return name(self.uri)

    @property
    def suffix(self) -> str:
        """The file extension of :attr:`name`, with its dot (``".safetensors"``)."""
        return Path(self.name).suffix

    @property
    def parent(self) -> StoragePath:
        """The URI one level up."""
        return StoragePath(parent(self.uri))

    def with_name(self, new_name: str) -> StoragePath:
        """The sibling called ``new_name``."""
        return self.parent / new_name

    def expanduser(self) -> StoragePath:
        """Itself (URIs have no ``~``)."""
        return self

    absolute = resolve = expanduser

    def exists(self) -> bool:
        """Whether an object or a prefix with objects is there."""
        return fs.exists(self.uri)

    def is_file(self) -> bool:
        """Whether an object is there."""
        return fs.exists(self.uri) and not fs.is_dir(self.uri)

    def is_dir(self) -> bool:
        """Whether objects exist under this prefix."""
        return fs.is_dir(self.uri)

    def iterdir(self) -> list[StoragePath]:
        """The entries directly under this prefix."""
        return [self / entry for entry in fs.list_dir(self.uri)]

    def glob(self, pattern: str) -> list[StoragePath]:
        """Entries directly under this prefix whose name matches a ``*``/``?`` pattern."""
        return [path for path in self.iterdir() if fnmatch.fnmatchcase(path.name, pattern)]

    def read_bytes(self) -> bytes:
        """The object's bytes."""
        return fs.read_bytes(self.uri)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The object's text."""
        return fs.read_text(self.uri, encoding)

    def write_bytes(self, data: bytes) -> None:
        """Write the object (replacing it)."""
        fs.write_bytes(self.uri, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        """Write the object as text (replacing it)."""
        fs.write_text(self.uri, text, encoding)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: prefixes exist once objects are written under them."""


def as_path(location: str | os.PathLike) -> Path | StoragePath:
    """A :class:`~pathlib.Path` for a local path, a :class:`StoragePath` for a URI."""
    if isinstance(location, StoragePath):
        return location
    text = os.fspath(location)
    if is_remote(text):
        return StoragePath(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text).expanduser()
