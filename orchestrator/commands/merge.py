"""``tune merge``: merge a PEFT LoRA adapter into a Hugging Face checkpoint, shard by shard."""

from typing import Annotated

import typer


def merge(
    base: Annotated[
        str, typer.Option("--base", help="Base Hugging Face model directory (path or URI).")
    ],
    adapter: Annotated[
        str, typer.Option("--adapter", help="PEFT adapter directory (path or URI).")
    ],
    output: Annotated[
        str, typer.Option("--output", help="Merged model directory, replaced (path or URI).")
    ],
    max_shard_size: Annotated[
        str | None,
        typer.Option("--max-shard-size", help="Largest output shard, e.g. 5GB (default: as base)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace --output even if it is not a model directory."),
    ] = False,
) -> None:
    """Merge a LoRA/DoRA adapter into its base model and write a Hugging Face directory."""
    from modeling.checkpointing import merge_adapter
    from modeling.checkpointing.atomic import require_complete

    size = int(max_shard_size) if max_shard_size and max_shard_size.isdigit() else max_shard_size
    try:
        require_complete(adapter, "the adapter")
        written = merge_adapter(base, adapter, output, max_shard_size=size, force=force)
    except (ValueError, OSError) as err:  # StorageError is an OSError naming the URI
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Merged model written to {written}")
