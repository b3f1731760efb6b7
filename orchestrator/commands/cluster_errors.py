"""``user_errors`` for cluster and job commands: also turns ``ClusterError`` into exit 1."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from orchestrator.commands.errors import user_errors


@contextmanager
def cluster_errors() -> Iterator[None]:
    """Print ``Error: ...`` and exit 1 for config, launch, spec, cluster and job errors."""
    from clusters.errors import ClusterError

    with user_errors():
        try:
            yield
        except ClusterError as err:
            typer.echo(f"Error: {err}", err=True)
            raise typer.Exit(1) from None
