"""``tune download``: the command; :mod:`orchestrator.download` does the work."""

from typing import Annotated

import typer

from orchestrator.commands.errors import user_errors
from orchestrator.download import DEFAULT_IGNORE_PATTERNS, DownloadError, download_model


def download(
    repo_id: Annotated[str, typer.Argument(help="Hub repo id, e.g. meta-llama/Meta-Llama-3-8B.")],
    output_dir: Annotated[
        str, typer.Option("--output-dir", help="Directory to put the files in (path or URI).")
    ],
    hf_token: Annotated[
        str | None,
        typer.Option(
            "--hf-token",
            envvar="HF_TOKEN",
            show_envvar=True,
            help="Hub token for gated or private repos (never printed or saved).",
        ),
    ] = None,
    ignore_patterns: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-patterns",
            help=(
                "Glob of repo paths to skip; repeat for several. Default skips Meta's "
                'original/consolidated*.pth weights; "" downloads everything.'
            ),
            show_default=False,
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch, tag or commit (default: main).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace --output-dir even if it is not a download of this repo."
        ),
    ] = False,
) -> None:
    """Download a model from the Hugging Face Hub (or HF_ENDPOINT) into --output-dir.

    A missing or empty --output-dir is created; an earlier download of the same repo is
    refreshed, transferring only what changed; anything else is refused unless --force.
    """
    patterns = DEFAULT_IGNORE_PATTERNS if ignore_patterns is None else tuple(ignore_patterns)
    with user_errors():
        try:
            output, sha, files = download_model(
                repo_id,
                output_dir,
                revision=revision,
                token=hf_token,
                ignore_patterns=patterns,
                force=force,
            )
        except DownloadError as err:
            typer.echo(f"Error: {err}", err=True)
            raise typer.Exit(1) from None
    for name in files:
        typer.echo(f"  {name}")
    typer.echo(f"Downloaded {len(files)} files of {repo_id} (commit {sha[:12]}) to {output}")
