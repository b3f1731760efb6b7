"""``tune plan``: will this config fit on these GPUs? Per-GPU memory, before launching.

Exit status: 0 when a plan was computed, whether or not it fits (the table says which), so
the command is safe to run for information; with ``--strict`` a plan that does not fit
exits 2, for scripts that gate a launch on it. Bad input (unknown GPU or config, fewer
than one node or GPU) prints ``Error: ...`` and exits 1.
"""

from typing import Annotated

import typer

from orchestrator.commands.errors import user_errors

DOES_NOT_FIT_EXIT = 2


def plan(
    config: Annotated[
        str, typer.Option("--config", "-c", help="Built-in config (e.g. llama3/8B_lora) or YAML.")
    ],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Config overrides: key=value, ~key, +key=value.")
    ] = None,
    nodes: Annotated[int, typer.Option("--nodes", help="Nodes in the cluster.")] = 1,
    gpus_per_node: Annotated[
        int, typer.Option("--gpus-per-node", help="GPUs (training ranks) per node.")
    ] = 1,
    gpu: Annotated[
        str,
        typer.Option(
            "--gpu",
            help="h100-80gb, h200, a100-80gb, a100-40gb, l40s, l4, a10g, rtx4090, rtx3090, "
            "rtx-a6000, or cpu.",
        ),
    ] = "h100-80gb",
    sharding: Annotated[
        str | None,
        typer.Option(
            "--sharding",
            help="fsdp (all ranks) or hsdp (shard within a node); default: as the recipe "
            "runs, hsdp on several nodes, fsdp on one.",
        ),
    ] = None,
    seq_len: Annotated[
        int | None,
        typer.Option(
            "--seq-len", min=1, help="Padded tokens per sample (default: the config's max)."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 2 when the plan does not fit.")
    ] = False,
) -> None:
    """Show per-GPU memory (weights, gradients, optimizer, activations) and whether it fits."""
    from orchestrator.config import load_config
    from orchestrator.planning.planner import plan_memory, render_table

    with user_errors():
        cfg = load_config(config, overrides or [])
        result = plan_memory(
            cfg,
            nodes=nodes,
            gpus_per_node=gpus_per_node,
            gpu=gpu,
            sharding=sharding,
            seq_len=seq_len,
            config_name=config,
        )
    typer.echo(render_table(result))
    if strict and not result.fits():
        raise typer.Exit(DOES_NOT_FIT_EXIT)
