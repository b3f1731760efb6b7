"""``tune run`` and ``tune generate``: fine-tune on Ray, then talk to the result."""

import json
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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No header or progress; only the summary.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary on stdout, nothing else.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Ray's logs and the workers' output.")
    ] = False,
) -> None:
    """Fine-tune with RECIPE and CONFIG on a Ray cluster (a local one by default).

    On a terminal the run shows a live progress bar; in a log or pipe, a line at about
    every 5% of the steps. The demo config ends with its base and tuned answers.
    """
    from orchestrator.commands.run_summary import format_summary, run_summary
    from orchestrator.config import config_name
    from orchestrator.launcher import LaunchOptions, launch
    from orchestrator.progress import progress_display
    from orchestrator.sdk import prepare

    started = time.perf_counter()
    display = None if quiet or as_json else progress_display()
    with user_errors():
        cfg, chosen = prepare(config, overrides or [], recipe, local=address is None)
        if display is not None:
            typer.echo(f"Starting {chosen} with config {config} ...", err=True)
        options = LaunchOptions(
            num_workers=num_workers,
            gpus_per_worker=gpus_per_worker,
            address=address,
            storage=storage,
            verbose=verbose,
        )
        try:
            result = launch(cfg, options, progress=display, config_name=config_name(config))
        finally:
            if display is not None:
                display.close()
        summary = run_summary(
            result, recipe=chosen, config=config, seconds=time.perf_counter() - started
        )
        report = _demo_report(cfg) if cfg.get("demo_assets") and not quiet else None
    if as_json:
        if report is not None:
            summary["demo"] = report.to_dict()
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo("\n" + "\n".join(format_summary(summary)))
    if report is not None:  # None when quiet
        from orchestrator.demo_report import format_report

        typer.echo("\nWhat the fine-tune taught (greedy decoding):")
        typer.echo("\n".join(format_report(report)))


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
    compare: Annotated[
        bool, typer.Option("--compare", help="Also answer with the base model, side by side.")
    ] = False,
) -> None:
    """Answer PROMPT with a run's merged model, decoding with the KV cache."""
    from orchestrator.config import load_config
    from orchestrator.generate import load_chat_model

    with user_errors():
        cfg = load_config(config, overrides or [])
        settings = dict(max_new_tokens=max_new_tokens, temperature=temperature)
        tuned = load_chat_model(cfg, checkpoint_dir).answer(prompt, **settings)
        base = load_chat_model(cfg, base=True).answer(prompt, **settings) if compare else None
    if base is None:
        typer.echo(tuned)
    else:
        typer.echo(f"base:  {base.strip()}\ntuned: {tuned.strip()}")


def _demo_report(cfg):
    """The demo's base-versus-tuned answers and accuracy (None when its outputs are remote)."""
    from modeling.storage import is_remote
    from orchestrator.demo_report import demo_report

    if is_remote(str(cfg.output_dir)):
        return None
    return demo_report(cfg)
