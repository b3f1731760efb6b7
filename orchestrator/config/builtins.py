"""The built-in configs shipped in ``orchestrator/configs/`` and how names find them.

A built-in name is the file's path under ``configs/`` without ``.yaml``
(``llama3/8B_lora``, ``demo``); the suffix may be given too.
"""

import difflib
import re
from pathlib import Path

from orchestrator.config.errors import ConfigError
from orchestrator.config.suggest import did_you_mean

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
YAML_SUFFIXES = (".yaml", ".yml")


def builtin_config_names() -> list[str]:
    """Every built-in config name, sorted with sizes in numeric order (7B before 13B)."""
    names = (
        path.relative_to(CONFIGS_DIR).with_suffix("").as_posix()
        for path in CONFIGS_DIR.rglob("*.yaml")
    )
    return sorted(names, key=_natural_key)


def _natural_key(name: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def strip_yaml_suffix(name: str) -> str:
    """``llama3/8B_lora.yaml`` -> ``llama3/8B_lora``; other names unchanged."""
    for suffix in YAML_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_builtin_config(name: str) -> bool:
    """Whether ``name`` (with or without ``.yaml``) names a built-in config."""
    return strip_yaml_suffix(name) in builtin_config_names()


def builtin_config_path(name: str) -> Path:
    """The YAML file of built-in config ``name``.

    Raises:
        ConfigError: For an unknown name, naming the closest built-in.
    """
    stem = strip_yaml_suffix(name)
    names = builtin_config_names()
    if stem not in names:
        raise ConfigError(
            f"unknown built-in config {name!r}.{did_you_mean(stem, names)} "
            "Run `tune ls` to list the built-in configs."
        )
    return CONFIGS_DIR / f"{stem}.yaml"


def closest_builtin_configs(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` built-in names close to ``name`` (a path's suffix and ``./`` ignored)."""
    stem = strip_yaml_suffix(name).removeprefix("./")
    return difflib.get_close_matches(stem, builtin_config_names(), n=n, cutoff=0.6)
