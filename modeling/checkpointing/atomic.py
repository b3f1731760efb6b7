"""Write a directory so that it appears complete or not at all, locally or behind a URI.

A local directory is written beside its final place and renamed in. Object stores have no
rename, so a directory behind a URI is written to node-local scratch, uploaded, and marked
complete by a last object, :data:`COMPLETE_MARKER`, written only after everything else:
readers (:func:`is_complete`) refuse a remote output without it, and a re-run replaces it.
"""

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch.distributed as dist

from modeling.storage import delete_tree, upload_dir
from modeling.storage.paths import StoragePath, as_path

COMPLETE_MARKER = ".tunefleet-complete"


def require_complete(directory: str | os.PathLike, what: str) -> None:
    """Raise ``FileNotFoundError`` for a remote output that was never completed.

    Args:
        directory: The output directory (local path or URI).
        what: What it holds, for the message (``"the merged model"``).
    """
    path = as_path(directory)
    if isinstance(path, StoragePath) and path.exists() and not is_complete(path):
        raise FileNotFoundError(
            f"{what} at {path} is incomplete (no {COMPLETE_MARKER}: the run that wrote it "
            f"stopped part-way); run it again to replace it"
        )


def is_complete(directory: str | os.PathLike) -> bool:
    """Whether an output directory is whole: any existing local one, a marked remote one."""
    path = as_path(directory)
    if isinstance(path, StoragePath):
        return (path / COMPLETE_MARKER).is_file()
    return path.is_dir()


@contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a local directory to write ``final``'s files into; put it in place on success.

    Locally it is a temporary sibling renamed into place, so an existing ``final`` is
    replaced only once the new directory is complete. Behind a URI it is node-local
    scratch, uploaded on success over whatever ``final`` held, then marked complete. On
    any error the temporary directory is removed (and nothing is marked complete).

    Raises:
        ValueError: Naming the directory when its parent cannot be created or written.
    """
    if isinstance(as_path(final), StoragePath):
        with _staged_upload(str(final)) as tmp:
            yield tmp
        return
    final = Path(final).expanduser().absolute()
    tmp = _staging_sibling(final)
    try:
        yield tmp
        replace_directory(final, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _staging_sibling(final: Path) -> Path:
    """A new hidden directory beside ``final`` (same file system, so a rename is atomic)."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(final.parent, os.W_OK):
            raise PermissionError(f"no write permission on {final.parent}")
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    except OSError as err:
        raise ValueError(
            f"Output directory {str(final)!r} is not writable ({err}); choose another "
            f"output_dir or fix its permissions"
        ) from err
    return tmp


def replace_directory(final: Path, tmp: Path) -> None:
    """Put the finished directory ``tmp`` at ``final``, removing what was there only afterwards.

    What ``final`` held (a directory, a file or a link) is renamed aside first, so at
    every moment ``final`` is either the old thing or the whole new directory.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists() or final.is_symlink():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        final.rename(old)
    tmp.rename(final)
    if old is None:
        return
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()


def publish_directory(local: str | os.PathLike, uri: str, marker: str = "complete\n") -> None:
    """Replace what ``uri`` holds by the files of ``local``, then mark it complete.

    Args:
        local: The finished directory (without a completion marker of its own).
        uri: Where it goes.
        marker: The completion marker's text, written last.
    """
    delete_tree(uri)  # a partial earlier attempt goes; its marker goes with it
    upload_dir(local, uri)
    (StoragePath(uri) / COMPLETE_MARKER).write_text(marker)


@contextmanager
def _staged_upload(uri: str) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="tunefleet-out-"))
    try:
        yield tmp
        publish_directory(tmp, uri)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def shared_directory(final: str | os.PathLike, rank: int, world_size: int) -> Iterator[Path]:
    """:func:`atomic_directory` for a directory that every rank writes some files of.

    All ranks must enter and leave together (it synchronises them). Locally, rank 0 makes
    the temporary sibling and tells the others its name; on leaving, rank 0 renames it into
    place once every rank is done. Behind a URI, rank 0 first removes what ``final``
    held, each rank writes to its own scratch and uploads it on leaving, and rank 0 marks
    the whole complete once every upload has finished.

    Args:
        final: The directory to produce (local path or URI).
        rank: This process's rank.
        world_size: How many ranks write.
    """
    if world_size == 1:
        with atomic_directory(final) as tmp:
            yield tmp
        return
    if isinstance(as_path(final), StoragePath):
        if rank == 0:
            delete_tree(str(final))
        dist.barrier()
        tmp = Path(tempfile.mkdtemp(prefix="tunefleet-out-"))
        try:
            yield tmp
            upload_dir(tmp, str(final))
            dist.barrier()
            if rank == 0:
                (StoragePath(str(final)) / COMPLETE_MARKER).write_text("complete\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    staged = [None]
    if rank == 0:
        staged[0] = str(_staging_sibling(Path(final).expanduser().absolute()))
    dist.broadcast_object_list(staged, src=0)
    tmp = Path(staged[0])
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        dist.barrier()
        if rank == 0:
            replace_directory(Path(final).expanduser().absolute(), tmp)
    except BaseException:
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
