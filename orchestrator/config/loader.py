"""Load a config: a built-in name, a YAML file or a dict, then overrides, then checks.

The result is an omegaconf ``DictConfig`` whose ``${...}`` interpolations stay live (so
``checkpointer.output_dir: ${output_dir}`` follows a later change of ``output_dir``) but
are checked to resolve here, so a typo fails at load time and not mid-run. Strings of the
form ``pkg://package/relative/path`` become absolute paths of files shipped inside an
installed package (the demo's data set), wherever the package is installed.
"""

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from modeling.storage import cached_local_copy, is_remote
from orchestrator.config.builtins import (
    YAML_SUFFIXES,
    builtin_config_path,
    closest_builtin_configs,
    is_builtin_config,
    strip_yaml_suffix,
)
from orchestrator.config.errors import ConfigError
from orchestrator.config.overrides import apply_overrides
from orchestrator.config.suggest import did_you_mean

PACKAGE_PREFIX = "pkg://"
ConfigSource = str | Path | Mapping[str, Any]


def load_config(config: ConfigSource, overrides: list[str] | None = None) -> DictConfig:
    """Load ``config``, apply ``overrides`` and check that every interpolation resolves.

    Args:
        config: A built-in name (``llama3/8B_lora``, with or without ``.yaml``), a path to a
            YAML file, or a dict / ``DictConfig`` (copied, not modified).
        overrides: ``key=value``, ``~key``, ``+key=value`` strings, applied in order
            (see :mod:`orchestrator.config.overrides`).

    Returns:
        The config, with ``pkg://`` paths made absolute and interpolations unresolved.

    Raises:
        FileNotFoundError: For a YAML path that does not exist (closest built-ins listed
            when the path looks like a built-in name).
        ConfigError: For an unknown built-in name, malformed YAML (file and line), a
            non-mapping document, a bad override or an interpolation that does not resolve.
    """
    if isinstance(config, Mapping):
        cfg = OmegaConf.create(
            OmegaConf.to_container(config) if isinstance(config, DictConfig) else dict(config)
        )
    else:
        cfg = read_yaml(config_path(config))
    apply_overrides(cfg, list(overrides or []))
    cfg = resolve_package_paths(cfg)
    check_interpolations(cfg)
    return cfg


def config_path(config: str | Path) -> Path:
    """The YAML file ``config`` names: a built-in name, a URI, or a filesystem path.

    A ``Path`` object is always a filesystem path; a string that is a built-in name wins
    over a file of the same name (write ``./demo.yaml`` to mean the file).

    Raises:
        FileNotFoundError: For a path-like name (a ``.yaml`` suffix or a directory part
            starting with ``/``, ``.`` or ``~``) that does not exist.
        ConfigError: For a bare name that is neither a built-in nor an existing file.
    """
    if isinstance(config, str) and is_builtin_config(config):
        return builtin_config_path(config)
    if isinstance(config, str) and is_remote(config):  # s3://, gs://, hf://: read a copy
        return cached_local_copy(config)
    path = Path(config).expanduser()
    if path.is_file():
        return path
    text = str(config)
    if path.is_dir():
        raise ConfigError(f"config {text!r} is a directory; give a YAML file inside it")
    looks_like_path = isinstance(config, Path) or text.endswith(YAML_SUFFIXES) or text[:1] in "/.~"
    if not looks_like_path:
        builtin_config_path(text)  # raises the unknown built-in error with a suggestion
    close = closest_builtin_configs(text)
    hint = f" Closest built-in configs: {', '.join(close)}." if close else ""
    raise FileNotFoundError(f"config file {text!r} not found ({path.absolute()}).{hint}")


def read_yaml(path: Path) -> DictConfig:
    """Read one YAML config file into a ``DictConfig``.

    Raises:
        ConfigError: For malformed YAML (naming the file, line and column), duplicate keys,
            or a document that is empty or not a mapping.
    """
    try:
        cfg = OmegaConf.load(path)
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error_message(path, err)) from err
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: a config must be a YAML mapping of keys, not a list")
    if not cfg:
        raise ConfigError(f"{path}: the config is empty")
    return cfg


def _yaml_error_message(path: Path, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    if mark is None:
        return f"malformed YAML in {path}: {problem}"
    message = f"malformed YAML in {path} at line {mark.line + 1}, column {mark.column + 1}: "
    message += problem
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and context_mark is not None and context_mark.line != mark.line:
        message += f" ({context} started at line {context_mark.line + 1})"
    return message


def resolve_package_path(value: str) -> str:
    """``pkg://orchestrator/data/x.json`` -> the absolute path of that file in the package.

    The package is located with ``importlib.util.find_spec`` (dotted names allowed); the
    file itself need not exist yet.

    Raises:
        ConfigError: If the string has no package or the package is not installed.
    """
    package, _, relative = value[len(PACKAGE_PREFIX) :].partition("/")
    if not package or not relative:
        raise ConfigError(f"{value!r}: write pkg://<package>/<path inside the package>")
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{value!r}: no installed package named {package!r}")
    return str(Path(list(spec.submodule_search_locations)[0]) / relative)


def resolve_package_paths(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` with every ``pkg://`` string value made an absolute path."""

    def convert(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: convert(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and value.startswith(PACKAGE_PREFIX):
            try:
                return resolve_package_path(value)
            except ConfigError as err:
                raise ConfigError(f"config key '{key}': {err}") from err
        return value

    return OmegaConf.create(convert(OmegaConf.to_container(cfg, resolve=False), ""))


def check_interpolations(cfg: DictConfig) -> None:
    """Resolve every ``${...}`` once, so a reference to a missing key fails now.

    Raises:
        ConfigError: Naming the key whose value does not resolve and, for a missing
            target, the closest existing key.
    """
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = str(err).splitlines()[0]
        missing = re.search(r"Interpolation key '([^']+)' not found", reason)
        hint = did_you_mean(missing.group(1), _dotted_keys(cfg)) if missing else ""
        raise ConfigError(f"config key '{key}': {reason}.{hint}") from err


def config_name(config: ConfigSource) -> str:
    """A short name for runs of ``config``: ``llama3/8B_lora`` -> ``llama3_8B_lora``.

    Built-in names give their path with ``_`` for ``/``, files their stem, dicts
    ``"config"``. The launcher uses it when ``run_name`` is null.
    """
    if isinstance(config, Mapping):
        return "config"
    if isinstance(config, str) and is_builtin_config(config):
        return strip_yaml_suffix(config).replace("/", "_")
    return Path(config).stem


def _dotted_keys(cfg: DictConfig) -> list[str]:
    keys: list[str] = []

    def visit(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                keys.append(f"{prefix}{k}")
                visit(v, f"{prefix}{k}.")

    visit(OmegaConf.to_container(cfg, resolve=False), "")
    return keys
