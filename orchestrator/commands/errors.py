"""One place that turns a user's mistakes into a message and exit status 1."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer


@contextmanager
def user_errors() -> Iterator[None]:
    """Print ``Error: ...`` on stderr and exit 1 for errors a user can fix; no traceback.

    Those are the project's own (config, launch, storage), ``ValueError`` (what every check
    of a user's input raises, naming the key or file and the fix) and ``OSError`` (a path
    that is missing, a file, unwritable or full: its message names the path).
    """
    from orchestrator.config import ConfigError
    from orchestrator.launcher import LaunchError

    errors = (ConfigError, LaunchError, ValueError, OSError)  # StorageError is an OSError
    try:
        yield
    except errors as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None
