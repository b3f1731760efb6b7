"""``tune merge``: merge a PEFT LoRA adapter into a Hugging Face checkpoint, shard by shard."""

from pathlib import Path
from typing import Annotated

import typer


def merge(
    base: Annotated[Path, typer.Option("--base", help="Base Hugging Face model directory.")],
    adapter: Annotated[Path, typer.Option("--adapter", help="PEFT adapter directory.")],
    output: Annotated[Path, typer.Option("--output", help="Merged model directory (replaced).")],
    max_shard_size: Annotated[
        str | None,
        typer.Option("--max-shard-size", help="Largest output shard, e.g. 5GB (default: as base)."),
    ] = None,
) -> None:
    """Merge a LoRA/DoRA adapter into its base model and write a Hugging Face directory."""
    from modeling.checkpointing import merge_adapter

    size = int(max_shard_size) if max_shard_size and max_shard_size.isdigit() else max_shard_size
    try:
        written = merge_adapter(base, adapter, output, max_shard_size=size)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Merged model written to {written}")
