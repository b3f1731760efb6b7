"""Arguments and options that several ``tune`` commands share, defined once."""

from typing import Annotated

import typer

Recipe = Annotated[str, typer.Argument(help="lora_finetune or full_finetune (or torchtune's).")]
ConfigOption = Annotated[
    str, typer.Option("--config", "-c", help="Built-in config (e.g. llama3/8B_lora) or YAML.")
]
Overrides = Annotated[
    list[str] | None, typer.Argument(help="Config overrides: key=value, ~key, +key=value.")
]
NumWorkers = Annotated[int | None, typer.Option("--num-workers", min=1, help="Ray Train workers.")]
GpusPerWorker = Annotated[
    float | None, typer.Option("--gpus-per-worker", min=0, help="GPUs per worker.")
]
Storage = Annotated[
    str | None,
    typer.Option("--storage", help="Checkpoint storage path or URI (all nodes must reach it)."),
]
