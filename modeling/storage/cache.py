"""A node-local copy of small remote inputs (configs, tokenizers, datasets, Meta .pth files).

Libraries such as sentencepiece and ``torch.load`` want a local file, and every rank of a
node asks for the same one. The first asker downloads it under a file lock (``filelock``,
which also serialises threads, since each lock holds its own descriptor); the others wait
and reuse it. A download goes to a temporary name that is renamed into place, so a killed
download never looks complete. Entries are keyed by the URI and a fingerprint of the
object (size with mtime, or the Hub's blob id), so a changed object is fetched again.
The cache lives under ``$TUNEFLEET_CACHE`` (default ``~/.cache/tunefleet``)/``storage``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.fs as pafs
from filelock import FileLock

from modeling.storage.backends import path_in
from modeling.storage.filesystems import (
    UPLOAD_WORKERS,
    download,
    file_info,
    storage_errors,
    walk_files,
)
from modeling.storage.hub import hf_filesystem
from modeling.storage.uri import join, name, parse


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else ``$TUNEFLEET_CACHE``/storage."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    base = os.environ.get("TUNEFLEET_CACHE") or "~/.cache/tunefleet"
    return Path(base).expanduser() / "storage"


def _fingerprint(uri: str, info: pafs.FileInfo) -> str:
    """What changes when the object changes: the Hub's blob id, else size and mtime."""
    parsed = parse(uri)
    if parsed.scheme == "hf":
        with storage_errors(uri):
            blob = hf_filesystem().info(path_in(parsed)).get("blob_id")
        return f"{info.size}:{blob}"
    mtime = info.mtime_ns if info.mtime is not None else None
    return f"{info.size}:{mtime}"


def _key(uri: str, fingerprint: str) -> str:
    return hashlib.sha256(f"{uri}\0{fingerprint}".encode()).hexdigest()[:32]


def _lock(root: Path, key: str) -> FileLock:
    locks = root / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(locks / f"{key}.lock")


def cached_local_copy(uri: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local file with the content of ``uri``, downloaded once per node.

    Args:
        uri: A local path (returned as is) or the URI of one file.
        cache_dir: The cache folder; default :func:`cache_root`.

    Returns:
        The cached file, named as the object is (``.../config.json``).

    Raises:
        RemoteNotFoundError: When there is no file at ``uri`` (and the other storage errors).
        ValueError: When ``uri`` is a folder (use :func:`cached_local_dir`).
    """
    text = os.fspath(uri)
    parsed = parse(text)
    if not parsed.is_remote:
        return Path(parsed.key)
    info = file_info(text)
    if info.type == pafs.FileType.Directory:
        raise ValueError(f"{text} is a folder; use cached_local_dir for folders")
    if info.type != pafs.FileType.File:
        with storage_errors(text):
            raise FileNotFoundError(text)
    root = cache_root(cache_dir)
    key = _key(text, _fingerprint(text, info))
    final = root / "objects" / key / name(text)
    if final.is_file():
        return final
    with _lock(root, key):
        if final.is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            download(text, tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
    return final


def cached_local_dir(
    uri: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    *,
    max_workers: int = UPLOAD_WORKERS,
) -> Path:
    """A local folder with every file under the folder ``uri``, downloaded once per node.

    Meant for folders of small files, such as a tokenizer; files download in parallel
    (``max_workers``) into a temporary folder that is renamed into place when complete.

    Args:
        uri: A local path (returned as is) or the URI of a folder.
        cache_dir: The cache folder; default :func:`cache_root`.
        max_workers: Files downloading at once.

    Returns:
        The cached folder, named as the remote one is.

    Raises:
        RemoteNotFoundError: When ``uri`` holds no files (and the other storage errors).
    """
    text = os.fspath(uri)
    parsed = parse(text)
    if not parsed.is_remote:
        return Path(parsed.key)
    files = walk_files(text)
    if not files:
        with storage_errors(text):
            raise FileNotFoundError(f"{text} holds no files")
    listing = "\n".join(
        f"{rel}\0{_fingerprint(join(text, rel), info)}" for rel, info in sorted(files.items())
    )
    root = cache_root(cache_dir)
    key = _key(text, listing)
    final = root / "dirs" / key / name(text)
    if final.is_dir():
        return final
    with _lock(root, key):
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            for rel in files:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            workers = max(1, min(max_workers, len(files)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda rel: download(join(text, rel), tmp / rel), files))
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
