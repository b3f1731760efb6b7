"""One place that turns a user's mistakes into a message and exit status 1."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer


@contextmanager
def user_errors() -> Iterator[None]:
    """Print ``Error: ...`` on stderr and exit 1 for errors a user can fix; no traceback."""
    from modeling.storage import StorageError
    from orchestrator.config import ConfigError
    from orchestrator.launcher import LaunchError

    errors = (
        ConfigError,
        LaunchError,
        StorageError,
        FileNotFoundError,
        ValueError,
        PermissionError,
    )
    try:
        yield
    except errors as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None
