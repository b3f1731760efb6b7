"""``tune cluster``: bring Ray clusters up and down, in a cloud (via ``ray up``) or locally."""

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.commands.cluster_errors import cluster_errors

cluster_app = typer.Typer(
    help="Bring Ray clusters up and down: a shipped spec (aws, gcp, onprem) or a YAML path.",
    no_args_is_help=True,
)
local_app = typer.Typer(
    help="A multi-node Ray cluster on this machine (head + worker raylets).",
    no_args_is_help=True,
)
cluster_app.add_typer(local_app, name="local")

Spec = Annotated[str, typer.Argument(help="Shipped spec (aws, gcp, onprem) or cluster YAML.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the ray command instead of running it.")
]
StateFile = Annotated[
    str | None,
    typer.Option("--state-file", help="Where the local cluster is recorded.", hidden=True),
]


def _ray_cli(action: str, spec: str, extra: list[str], dry_run: bool) -> None:
    from clusters.spec_files import SpecError, load_spec, spec_path

    with cluster_errors():
        path = spec_path(spec)
        data = load_spec(path)
        if "apiVersion" in data:
            raise SpecError(
                f"{str(path)!r} is a KubeRay {data['kind']} manifest: apply it with "
                f"`kubectl apply -f {path}`; `tune cluster` runs Ray cluster-launcher YAMLs"
            )
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray) if ray.exists() else "ray", action, *extra, str(path)]
    if dry_run:
        typer.echo(shlex.join(command))
        return
    try:
        code = subprocess.run(command).returncode
    except FileNotFoundError:
        typer.echo("Error: `ray` is not installed; pip install 'ray[default]'", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@cluster_app.command("up")
def cluster_up(
    spec: Spec,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    dry_run: DryRun = False,
) -> None:
    """Start (or update) the cluster SPEC with Ray's cluster launcher (``ray up``)."""
    _ray_cli("up", spec, ["-y"] if yes else [], dry_run)


@cluster_app.command("down")
def cluster_down(
    spec: Spec,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    dry_run: DryRun = False,
) -> None:
    """Tear down the cluster SPEC (``ray down``)."""
    _ray_cli("down", spec, ["-y"] if yes else [], dry_run)


@cluster_app.command("status")
def cluster_status(spec: Spec, dry_run: DryRun = False) -> None:
    """Print the head node's IP of the cluster SPEC (``ray get-head-ip``)."""
    _ray_cli("get-head-ip", spec, [], dry_run)


@local_app.command("up")
def local_up(
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="Ray nodes, head included.")] = 2,
    cpus_per_node: Annotated[
        int, typer.Option("--cpus-per-node", min=1, help="Logical CPUs of each node.")
    ] = 1,
    state_file: StateFile = None,
) -> None:
    """Start a head and NODES-1 worker raylets on this machine; print the addresses."""
    from clusters import local_cluster

    with cluster_errors():
        cluster = local_cluster.up(nodes, cpus_per_node, state_file=state_file)
    typer.echo(f"Local Ray cluster up: {nodes} nodes x {cpus_per_node} CPUs")
    typer.echo(f"  address:   {cluster.address}")
    typer.echo(f"  dashboard: {cluster.dashboard_url}")
    typer.echo(f"  submit:    tune submit --address {cluster.dashboard_url} RECIPE --config ...")


@local_app.command("down")
def local_down(state_file: StateFile = None) -> None:
    """Stop the local cluster's processes (only those; other Ray instances are untouched)."""
    from clusters import local_cluster

    cluster = local_cluster.down(state_file)
    typer.echo("No local cluster is up." if cluster is None else "Local Ray cluster stopped.")


@local_app.command("status")
def local_status(state_file: StateFile = None) -> None:
    """Print the local cluster's addresses and which nodes are alive; exit 1 if none is up."""
    from clusters import local_cluster

    state = local_cluster.status(state_file)
    if state is None:
        typer.echo("No local cluster is up; start one with `tune cluster local up`.", err=True)
        raise typer.Exit(1)
    cluster, alive = state["cluster"], state["alive"]
    typer.echo(f"address:   {cluster.address}")
    typer.echo(f"dashboard: {cluster.dashboard_url}")
    for node, up in zip(cluster.nodes, alive, strict=True):
        role = "head  " if node.head else "worker"
        typer.echo(f"  {role} {node.cpus} CPUs  {'alive' if up else 'DOWN'}  {node.temp_dir}")
