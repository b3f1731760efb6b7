"""``tune run`` and ``tune generate``: fine-tune on Ray, then talk to the result."""

import sys
import time
from typing import Annotated

import typer

from orchestrator.commands.errors import user_errors
from orchestrator.commands.options import (
    ConfigOption,
    GpusPerWorker,
    NumWorkers,
    Overrides,
    Recipe,
    Storage,
)


def run(
    recipe: Recipe,
    config: ConfigOption,
    overrides: Overrides = None,
    num_workers: NumWorkers = None,
    gpus_per_worker: GpusPerWorker = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Existing Ray cluster (default: local).")
    ] = None,
    storage: Storage = None,
) -> None:
    """Fine-tune with RECIPE and CONFIG on a Ray cluster (a local one by default)."""
    from orchestrator.launcher import LaunchOptions, launch
    from orchestrator.sdk import prepare

    started = time.perf_counter()
    with user_errors():
        cfg, chosen = prepare(config, overrides or [], recipe, local=address is None)
        typer.echo(f"Starting {chosen} with config {config} ...", err=True)
        options = LaunchOptions(
            num_workers=num_workers,
            gpus_per_worker=gpus_per_worker,
            address=address,
            storage=storage,
        )
        from orchestrator.config import config_name

        result = launch(cfg, options, progress=_progress_printer(), config_name=config_name(config))
    last = result.metrics[-1] if result.metrics else {}
    first_loss = result.metrics[0]["loss"] if result.metrics else float("nan")
    typer.echo(
        f"\nDone in {time.perf_counter() - started:.0f}s: {last.get('step', 0)} steps, "
        f"loss {first_loss:.4f} -> {last.get('loss', float('nan')):.4f}"
    )
    if result.adapter_dir:
        typer.echo(f"  adapter:     {result.adapter_dir}")
    typer.echo(f"  merged:      {result.merged_dir}")
    typer.echo(f"  metrics:     {result.output_dir / 'metrics.jsonl'}")
    typer.echo(f"  loss curve:  {result.output_dir / 'loss_curve.png'}")
    typer.echo(f"  checkpoints: {result.checkpoint_dir}")


def generate(
    config: ConfigOption,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The instruction to answer.")],
    overrides: Overrides = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 48,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.0,
    checkpoint_dir: Annotated[
        str | None,
        typer.Option("--checkpoint-dir", help="Model directory (default: <output_dir>/merged)."),
    ] = None,
) -> None:
    """Answer PROMPT with a run's merged model, decoding with the KV cache."""
    from orchestrator.config import load_config
    from orchestrator.generate import generate_from_config

    with user_errors():
        cfg = load_config(config, overrides or [])
        text = generate_from_config(
            cfg,
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            checkpoint_dir=checkpoint_dir,
        )
    typer.echo(text)


def _progress_printer():
    """Redraw one line on a terminal; print a line per step otherwise."""
    interactive = sys.stderr.isatty()

    def show(line: str) -> None:
        if interactive:
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()
        else:
            typer.echo(line, err=True)

    return show
