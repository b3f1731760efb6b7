"""``tune submit`` and ``tune jobs``: fine-tunes as Ray jobs on a running cluster."""

from typing import Annotated

import typer

from orchestrator.commands.cluster_errors import cluster_errors
from orchestrator.commands.options import (
    ConfigOption,
    GpusPerWorker,
    NumWorkers,
    Overrides,
    Recipe,
    Storage,
)

jobs_app = typer.Typer(
    help="Follow and stop jobs submitted with `tune submit`.", no_args_is_help=True
)

Address = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Dashboard URL, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS, the local "
        "cluster, or http://127.0.0.1:8265).",
    ),
]
JobId = Annotated[str, typer.Argument(help="The job id `tune submit` printed.")]


def submit(
    recipe: Recipe,
    config: ConfigOption,
    overrides: Overrides = None,
    address: Address = None,
    num_workers: NumWorkers = None,
    gpus_per_worker: GpusPerWorker = None,
    storage: Storage = None,
    hf_token: Annotated[
        str | None,
        typer.Option("--hf-token", help="Hugging Face token (default $HF_TOKEN); a job env var."),
    ] = None,
    install: Annotated[
        bool,
        typer.Option("--install/--no-install", help="pip-install Tunefleet on the cluster."),
    ] = True,
    pip_spec: Annotated[
        str | None, typer.Option("--pip", help="What to pip-install (default this version).")
    ] = None,
) -> None:
    """Submit a fine-tune to a Ray cluster as a job; print its id."""
    from orchestrator.jobs import submit as submit_job

    with cluster_errors():
        handle = submit_job(
            config,
            overrides,
            address=address,
            recipe=recipe,
            num_workers=num_workers,
            gpus_per_worker=gpus_per_worker,
            storage=storage,
            hf_token=hf_token,
            install=install,
            pip_spec=pip_spec,
            log=lambda line: typer.echo(line, err=True),
        )
    typer.echo(handle.job_id)


def _handle(job_id: str, address: str | None):
    from clusters.jobs import JobHandle, default_address

    return JobHandle(job_id, address or default_address())


@jobs_app.command("list")
def jobs_list(address: Address = None) -> None:
    """List the cluster's jobs: id, status, recipe and config."""
    from clusters.jobs import META_PREFIX, list_jobs

    with cluster_errors():
        jobs = list_jobs(address)
    for job in jobs:
        meta = job.metadata or {}
        typer.echo(
            f"{job.submission_id or job.job_id}  {job.status.value:<9}  "
            f"{meta.get(META_PREFIX + 'recipe', '-')}  {meta.get(META_PREFIX + 'config', '-')}"
        )


@jobs_app.command("status")
def jobs_status(job_id: JobId, address: Address = None) -> None:
    """Print a job's status (and Ray's message); exit 1 if it failed."""
    with cluster_errors():
        info = _handle(job_id, address).info()
    typer.echo(f"{job_id}: {info.status.value}")
    if info.message:
        typer.echo(f"  {info.message}")
    if info.status.value == "FAILED":
        raise typer.Exit(1)


@jobs_app.command("logs")
def jobs_logs(
    job_id: JobId,
    address: Address = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends.")] = False,
) -> None:
    """Print a job's output (``--follow`` streams it until the job ends)."""
    with cluster_errors():
        handle = _handle(job_id, address)
        if follow:
            for chunk in handle.follow():
                typer.echo(chunk, nl=False)
        else:
            typer.echo(handle.logs(), nl=False)


@jobs_app.command("stop")
def jobs_stop(job_id: JobId, address: Address = None) -> None:
    """Stop a running job."""
    with cluster_errors():
        stopped = _handle(job_id, address).stop()
    typer.echo(f"{job_id}: {'stop requested' if stopped else 'not running'}")
