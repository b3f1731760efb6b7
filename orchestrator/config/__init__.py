"""Configs for the ``tune`` CLI, the SDK and the recipes.

- :func:`load_config`: a built-in name, YAML path or dict, plus ``key=value`` overrides.
- :func:`resolve_component` / :func:`instantiate`: ``_component_`` paths (torchtune's
  resolve to this project's equivalents) and building them.
- :func:`validate_config`: every component resolved and its arguments bound, nothing built.
- :func:`resolve_recipe` / :func:`default_recipe`: recipe names, ours and torchtune's.
"""

from orchestrator.config.builtins import builtin_config_names, builtin_config_path
from orchestrator.config.components import instantiate, is_component, resolve_component
from orchestrator.config.errors import ConfigError
from orchestrator.config.loader import config_name, load_config
from orchestrator.config.recipes import RECIPES, default_recipe, resolve_recipe
from orchestrator.config.validate import validate_config

__all__ = [
    "RECIPES",
    "ConfigError",
    "builtin_config_names",
    "builtin_config_path",
    "config_name",
    "default_recipe",
    "instantiate",
    "is_component",
    "load_config",
    "resolve_component",
    "resolve_recipe",
    "validate_config",
]
