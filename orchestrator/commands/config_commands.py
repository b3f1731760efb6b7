"""``tune ls``, ``tune cp``, ``tune cat`` and ``tune validate``: the built-in configs.

Errors a user can make (unknown names, missing files, malformed YAML, bad keys) print one
clear message on stderr and exit 1, without a traceback.
"""

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.config import (
    ConfigError,
    builtin_config_names,
    builtin_config_path,
    default_recipe,
    load_config,
    validate_config,
)
from orchestrator.config.loader import config_path
from orchestrator.config.recipes import RECIPE_ALIASES, RECIPES


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn config errors into ``Error: ...`` on stderr and exit status 1."""
    try:
        yield
    except (ConfigError, OSError) as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None


def list_configs() -> None:
    """List the recipes and the built-in configs each one runs."""
    by_recipe: dict[str, list[str]] = {recipe: [] for recipe in RECIPES}
    for name in builtin_config_names():
        by_recipe[default_recipe(load_config(name))].append(name)
    width = max(len(recipe) for recipe in RECIPES) + 3
    lines = [f"{'RECIPE':<{width}}CONFIG"]
    for recipe, names in by_recipe.items():
        for i, name in enumerate(names or ["-"]):
            lines.append(f"{recipe if i == 0 else '':<{width}}{name}")
    torchtune_names = [name for name in RECIPE_ALIASES if name not in RECIPES]
    lines += ["", "torchtune's recipe names are accepted too: " + ", ".join(torchtune_names)]
    typer.echo("\n".join(lines))


def copy_config(
    config: Annotated[str, typer.Argument(help="Built-in config name, e.g. llama3/8B_lora.")],
    destination: Annotated[
        Path, typer.Argument(help="File to write (.yaml added if absent) or a directory.")
    ],
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite an existing file.")
    ] = False,
    make_parents: Annotated[
        bool, typer.Option("--make-parents", help="Create missing parent directories.")
    ] = False,
) -> None:
    """Copy a built-in config to a file you can edit, then run with --config FILE."""
    with _user_errors():
        source = builtin_config_path(config)
        target = destination / source.name if destination.is_dir() else destination
        if not target.suffix:
            target = target.with_suffix(".yaml")
        blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise ConfigError(f"{blocking} is a file, so {target} cannot be written there")
        if not target.parent.is_dir():
            if not make_parents:
                raise ConfigError(
                    f"directory {target.parent} does not exist; create it or pass --make-parents"
                )
            target.parent.mkdir(parents=True)
        if target.resolve() == source.resolve():
            raise ConfigError(
                f"{target} is the built-in config {config!r} itself; copy it to another path"
            )
        if target.is_dir():
            raise ConfigError(f"{target} is a directory; name a file to write instead")
        if target.exists() and not force:
            raise ConfigError(f"{target} already exists; pass --force to overwrite it")
        _write_atomically(target, source.read_bytes())
    typer.echo(f"Copied {config} to {target}")


def _write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cat_config(
    config: Annotated[str, typer.Argument(help="Built-in config name or YAML path.")],
) -> None:
    """Print a config's YAML, comments included."""
    with _user_errors():
        text = config_path(config).read_text()
    typer.echo(text, nl=not text.endswith("\n"))


def validate(
    config: Annotated[str, typer.Argument(help="Built-in config name or YAML path.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Overrides: key=value, ~key (delete), +key=value (add)."),
    ] = None,
) -> None:
    """Check a config and overrides without building anything.

    Every component path resolves and every argument binds; a typo is reported with the
    closest valid name.
    """
    with _user_errors():
        notes = validate_config(load_config(config, overrides or []))
    for note in notes:
        typer.echo(f"Note: {note}", err=True)
    typer.echo("Config is well-formed!")


COMMANDS: dict[str, Callable[..., None]] = {
    "ls": list_configs,
    "cp": copy_config,
    "cat": cat_config,
    "validate": validate,
}


def register(app: typer.Typer) -> None:
    """Add ``ls``, ``cp``, ``cat`` and ``validate`` to the ``tune`` app."""
    for name, command in COMMANDS.items():
        app.command(name)(command)
