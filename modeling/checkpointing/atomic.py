"""Write a directory so that it appears complete or not at all."""

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``final`` to write into; rename it into place on success.

    An existing ``final`` is replaced only once the new directory is complete. On any
    error the temporary directory is removed and ``final`` is left as it was.

    Raises:
        ValueError: Naming the directory when its parent cannot be created or written.
    """
    final = Path(final).expanduser().absolute()
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
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
