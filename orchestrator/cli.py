"""The ``tune`` / ``tunefleet`` command line (a Typer app).

Commands are registered here as their features land: downloads, configs, runs, merges,
jobs and clusters.
"""

from importlib.metadata import PackageNotFoundError, version

import typer

from orchestrator.commands import config_commands
from orchestrator.commands.cluster import cluster_app
from orchestrator.commands.download import download
from orchestrator.commands.jobs import jobs_app, submit
from orchestrator.commands.merge import merge
from orchestrator.commands.plan import plan
from orchestrator.commands.run import generate, run

app = typer.Typer(
    name="tune",
    help="Tunefleet: fine-tune Llama 3, Llama 2, Mistral, Phi-3 and Gemma on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"tunefleet {version('tunefleet')}")
        except PackageNotFoundError:  # running from a source tree without installing
            typer.echo("tunefleet (not installed)")
        raise typer.Exit()


@app.callback()
def main(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Tunefleet: fine-tune Llama 3, Llama 2, Mistral, Phi-3 and Gemma on Ray."""


app.command("run", context_settings={"allow_interspersed_args": True})(run)
app.command("generate")(generate)
app.command("download")(download)
app.command("merge")(merge)
config_commands.register(app)
app.add_typer(cluster_app, name="cluster")
app.command("submit", context_settings={"allow_interspersed_args": True})(submit)
app.add_typer(jobs_app, name="jobs")
app.command("plan", context_settings={"allow_interspersed_args": True})(plan)

if __name__ == "__main__":
    app()
