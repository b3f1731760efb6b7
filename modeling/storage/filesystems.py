"""One API over local paths, s3://, gs:// and (read-only) hf:// for the rest of the code.

Callers write one code path: every function takes a local path or a URI, and every
failure comes out as a :mod:`modeling.storage.errors` error naming the URI and the fix.
Writes to local paths appear atomically (a temporary sibling renamed into place); S3 and
GCS objects appear only once their upload completes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pafs

from modeling.storage.backends import backend, filesystem, path_in
from modeling.storage.errors import translate
from modeling.storage.hub import HubInputFile, hf_filesystem
from modeling.storage.uri import StorageUri, join, parse

__all__ = [
    "delete_tree",
    "download",
    "exists",
    "file_info",
    "filesystem",
    "is_dir",
    "list_dir",
    "list_files",
    "open_input",
    "open_input_stream",
    "open_output",
    "read_bytes",
    "read_text",
    "size",
    "storage_errors",
    "upload_dir",
    "walk_files",
    "write_bytes",
    "write_text",
]

COPY_CHUNK_BYTES = 8 << 20
UPLOAD_WORKERS = 8


def _bucket_exists(parsed: StorageUri) -> bool | None:
    """Whether an s3/gs bucket exists (pyarrow reports a missing bucket as a missing key)."""
    try:
        info = backend(parsed).get_file_info(parsed.bucket)
    except Exception:  # the original error is the one to report
        return None
    return info.type != pafs.FileType.NotFound


@contextmanager
def storage_errors(uri: str | os.PathLike) -> Iterator[None]:
    """Re-raise errors inside the block as clear :mod:`~modeling.storage.errors` errors."""
    try:
        yield
    except Exception as err:
        parsed = parse(uri)
        bucket_exists = None
        if parsed.scheme in ("s3", "gs") and isinstance(err, FileNotFoundError):
            bucket_exists = _bucket_exists(parsed)
        new = translate(err, os.fspath(uri), bucket_exists=bucket_exists)
        if new is err:
            raise
        raise new from None


def _writable(uri: str | os.PathLike) -> StorageUri:
    parsed = parse(uri)
    if parsed.scheme == "hf":
        raise ValueError(
            f"Cannot write to {os.fspath(uri)!r}: hf:// URIs are read-only inputs; write outputs "
            "to a local path, s3:// or gs:// (and push to the Hub afterwards)"
        )
    return parsed


def file_info(uri: str | os.PathLike) -> pafs.FileInfo:
    """The pyarrow ``FileInfo`` (type, size, mtime) of ``uri``; ``NotFound`` if it is missing."""
    parsed = parse(uri)
    with storage_errors(uri):
        return backend(parsed).get_file_info(path_in(parsed))


def exists(uri: str | os.PathLike) -> bool:
    """Whether a file or folder (a prefix with objects, a bucket) exists at ``uri``."""
    return file_info(uri).type != pafs.FileType.NotFound


def is_dir(uri: str | os.PathLike) -> bool:
    """Whether ``uri`` is a folder: a local directory, a prefix holding objects, a bucket."""
    return file_info(uri).type == pafs.FileType.Directory


def list_dir(uri: str | os.PathLike) -> list[str]:
    """The sorted names (not paths) of the files and folders directly under ``uri``.

    Raises:
        RemoteNotFoundError: When ``uri`` does not exist.
    """
    fs, path = filesystem(uri)
    with storage_errors(uri):
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    return sorted(info.base_name for info in infos)


def list_files(uri: str | os.PathLike) -> list[str]:
    """Every file under the folder ``uri``, at any depth, as sorted ``/``-separated relative paths.

    Raises:
        RemoteNotFoundError: When ``uri`` does not exist.
    """
    return sorted(walk_files(uri))


def walk_files(uri: str | os.PathLike) -> dict[str, pafs.FileInfo]:
    """Like :func:`list_files`, with each file's ``FileInfo`` (size, mtime)."""
    fs, path = filesystem(uri)
    with storage_errors(uri):
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    base = path.rstrip("/") + "/"
    out = {}
    for info in infos:
        if info.type == pafs.FileType.File:
            rel = info.path[len(base) :] if info.path.startswith(base) else info.base_name
            out[rel] = info
    return out


def size(uri: str | os.PathLike) -> int:
    """The size in bytes of the file at ``uri``.

    Raises:
        RemoteNotFoundError: When nothing is at ``uri``.
        ValueError: When ``uri`` is a folder.
    """
    info = file_info(uri)
    if info.type == pafs.FileType.Directory:
        raise ValueError(f"{os.fspath(uri)} is a folder, not a file")
    if info.type != pafs.FileType.File:
        with storage_errors(uri):
            raise FileNotFoundError(os.fspath(uri))
    return info.size


def open_input(uri: str | os.PathLike):
    """A random-access file: ``read_at(nbytes, offset)``, ``size()``, ``read()``, ``close()``.

    ``read_at`` may be called from several threads at once (see :mod:`.ranges`). For
    s3/gs/local this is a pyarrow ``RandomAccessFile``; for hf:// a :class:`HubInputFile`.
    """
    parsed = parse(uri)
    with storage_errors(uri):
        if parsed.scheme == "hf":
            return HubInputFile(hf_filesystem(), path_in(parsed))
        return backend(parsed).open_input_file(path_in(parsed))


@contextmanager
def open_input_stream(uri: str | os.PathLike) -> Iterator:
    """A file to read once from start to end (``read(n)``), as one streaming GET."""
    parsed = parse(uri)
    with storage_errors(uri):
        if parsed.scheme == "hf":
            stream = hf_filesystem().open(path_in(parsed), "rb", block_size=0)
        else:
            stream = backend(parsed).open_input_stream(path_in(parsed))
        with stream:
            yield stream


def read_bytes(uri: str | os.PathLike) -> bytes:
    """The whole content of a (small) file."""
    with open_input_stream(uri) as stream, storage_errors(uri):
        return stream.read()


def download(uri: str | os.PathLike, local: str | os.PathLike) -> None:
    """Stream the file at ``uri`` into the local file ``local`` (created or replaced)."""
    with open_input_stream(uri) as stream, open(local, "wb") as out, storage_errors(uri):
        while chunk := stream.read(COPY_CHUNK_BYTES):
            out.write(chunk)


def read_text(uri: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The whole content of a (small) text file."""
    return read_bytes(uri).decode(encoding)


@contextmanager
def open_output(uri: str | os.PathLike) -> Iterator[pafs.NativeFile]:
    """Write a file as a stream; it appears at ``uri`` only if the block completes.

    Locally the stream writes a temporary sibling that is renamed into place (parent
    folders are created); on s3/gs the upload completes on success, and an object left by
    a failed block is deleted.

    Raises:
        ValueError: For an hf:// URI (read-only).
    """
    parsed = _writable(uri)
    fs, path = backend(parsed), path_in(parsed)
    if parsed.scheme == "file":
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with storage_errors(uri):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            stream = fs.open_output_stream(tmp)
        try:
            with stream:
                yield stream
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    with storage_errors(uri):
        stream = fs.open_output_stream(path)
    try:
        yield stream
    except BaseException:
        try:
            stream.close()
            fs.delete_file(path)
        except Exception:  # the caller's error is the one to report
            pass
        raise
    with storage_errors(uri):
        stream.close()


def write_bytes(uri: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``uri`` (replacing it), atomically as :func:`open_output` does."""
    with open_output(uri) as stream, storage_errors(uri):
        stream.write(data)


def write_text(uri: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``uri`` (replacing it)."""
    write_bytes(uri, text.encode(encoding))


def _copy_file(local: Path, dest: str) -> None:
    with open(local, "rb") as src, open_output(dest) as out, storage_errors(dest):
        while chunk := src.read(COPY_CHUNK_BYTES):
            out.write(chunk)


def upload_dir(
    local_dir: str | os.PathLike, uri: str | os.PathLike, *, max_workers: int = UPLOAD_WORKERS
) -> list[str]:
    """Copy every file under ``local_dir`` to the same relative path under ``uri``.

    Files are uploaded by at most ``max_workers`` threads, each streaming in 8 MiB chunks,
    so memory stays bounded whatever the file sizes. The destination may be local too.

    Returns:
        The uploaded files' paths relative to ``local_dir``, sorted (``/``-separated).

    Raises:
        ValueError: For an hf:// destination, or when ``local_dir`` is not a local folder.
    """
    _writable(uri)
    root = Path(local_dir).expanduser()
    if not root.is_dir():
        raise ValueError(f"upload_dir: {str(root)!r} is not a local directory")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    base = os.fspath(uri)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(files) or 1))) as pool:
        list(pool.map(lambda rel: _copy_file(root / rel, join(base, rel)), files))
    return files


def delete_tree(uri: str | os.PathLike) -> None:
    """Delete the file or folder at ``uri`` with everything under it; missing is fine.

    Raises:
        ValueError: For an hf:// URI, or for a bucket root (empty a bucket elsewhere).
    """
    parsed = _writable(uri)
    fs, path = backend(parsed), path_in(parsed)
    info = file_info(uri)
    if info.type == pafs.FileType.NotFound:
        return
    if parsed.is_remote and not parsed.key:
        raise ValueError(f"Refusing to delete the whole bucket {os.fspath(uri)!r}")
    with storage_errors(uri):
        if info.type == pafs.FileType.Directory:
            if parsed.scheme == "file":
                shutil.rmtree(path)
            else:
                fs.delete_dir(path)
        else:
            fs.delete_file(path)
