"""``_component_`` nodes: resolve their dotted paths, check their arguments, build them.

A component node is a mapping with a ``_component_`` key naming a callable by dotted path
(``modeling.llama3.lora_llama3_8b``, ``torch.optim.AdamW``); its other keys are keyword
arguments. torchtune paths go through the alias table in :mod:`orchestrator.config.aliases`.
Modules are imported only when a path is resolved, never when this module is imported.
"""

import importlib
import inspect
import pkgutil
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from orchestrator.config.aliases import Alias, alias_for, is_foreign, known_foreign_paths
from orchestrator.config.errors import ConfigError
from orchestrator.config.suggest import closest_path, did_you_mean
from orchestrator.config.tokenizer_keywords import (
    apply_prompt_template,
    build_prompt_template,
    split_template,
    unsupported_keywords,
)

COMPONENT_KEY = "_component_"
COMPATIBILITY_DOC = "docs/torchtune_compatibility.md"


def is_component(node: Any) -> bool:
    """Whether ``node`` is a mapping with a ``_component_`` key."""
    if isinstance(node, DictConfig):
        return COMPONENT_KEY in node
    return isinstance(node, Mapping) and COMPONENT_KEY in node


def resolve_component(path: str) -> Callable[..., Any]:
    """Import the callable a ``_component_`` path names, through the torchtune aliases.

    Args:
        path: Dotted path, e.g. ``modeling.llama3.lora_llama3_8b``, ``torch.optim.AdamW``
            or ``torchtune.training.FullModelHFCheckpointer``.

    Raises:
        ConfigError: Naming the path and, for a typo, the closest existing name (module
            attribute or submodule); for an unmapped torchtune path, the closest mapped one
            when one is close.
    """
    return resolve_with_alias(path)[0]


def resolve_with_alias(path: str) -> tuple[Callable[..., Any], Alias | None]:
    """:func:`resolve_component`, also returning the alias used (None when none was)."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"_component_ must be a dotted path string, got {path!r}")
    alias = alias_for(path)
    if alias is None and is_foreign(path):
        close = closest_path(path, known_foreign_paths())
        hint = f" Did you mean '{close}'?" if close else ""
        raise ConfigError(
            f"{path} is a torchtune path with no Tunefleet equivalent.{hint} "
            f"The supported ones are listed in {COMPATIBILITY_DOC}"
        )
    target = alias.target if alias else path
    try:
        obj = _import(target)
    except ConfigError as err:
        if alias is None:
            raise
        raise ConfigError(f"{path} maps to {target}, which cannot be used: {err}") from err
    if not callable(obj):
        raise ConfigError(f"{target} is a {type(obj).__name__}, not a callable component")
    return obj, alias


def _import(path: str) -> Any:
    parts = path.split(".")
    if not all(part.isidentifier() for part in parts):
        raise ConfigError(f"{path!r} is not a dotted Python path (like torch.optim.AdamW)")
    module: ModuleType | None = None
    split = len(parts)
    while split > 0:
        name = ".".join(parts[:split])
        try:
            module = importlib.import_module(name)
            break
        except ModuleNotFoundError as err:
            if err.name is None or not (name == err.name or name.startswith(err.name + ".")):
                raise ConfigError(f"cannot import {path}: importing {name} failed: {err}") from err
            split -= 1
    if module is None:
        raise ConfigError(f"cannot import {path}: there is no module named {parts[0]!r}")
    obj: Any = module
    for i in range(split, len(parts)):
        if not hasattr(obj, parts[i]):
            owner = ".".join(parts[:i])
            raise ConfigError(
                f"cannot import {path}: {owner} has no attribute {parts[i]!r}."
                f"{did_you_mean(parts[i], _public_names(obj))}"
            )
        obj = getattr(obj, parts[i])
    return obj


def _public_names(obj: Any) -> list[str]:
    names = [name for name in dir(obj) if not name.startswith("_")]
    if isinstance(obj, ModuleType) and hasattr(obj, "__path__"):
        names += [info.name for info in pkgutil.iter_modules(obj.__path__)]
    return names


def check_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> list[tuple[str | None, str]]:
    """Check that ``fn(*args, **kwargs)`` binds, without calling it.

    Returns:
        ``(argument, message)`` for each problem: an unexpected keyword (with the closest
        parameter), a missing required argument, or an argument given twice; ``argument``
        is None when no single keyword is at fault. Empty when the call binds or ``fn``
        has no inspectable signature.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    params = signature.parameters
    kinds = inspect.Parameter
    try:
        positional = signature.bind_partial(*args).arguments
    except TypeError as err:
        return [(None, str(err))]
    problems: list[tuple[str | None, str]] = []
    keywords = [
        name
        for name, p in params.items()
        if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY) and name not in positional
    ]
    takes_any = any(p.kind == kinds.VAR_KEYWORD for p in params.values())
    for key in kwargs:
        if key in positional:
            problems.append((key, f"'{key}' is passed by the recipe; remove it from the config"))
        elif key not in keywords and not takes_any:
            problems.append((key, f"unexpected argument '{key}'.{did_you_mean(key, keywords)}"))
    if problems:
        return problems
    bound = signature.bind_partial(*args, **kwargs).arguments
    for name, p in params.items():
        required = p.default is p.empty and p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
        if required and name not in bound:
            problems.append((name, f"missing required argument '{name}'"))
    return problems


def instantiate(node: Any, *args: Any, **kwargs: Any) -> Any:
    """Build the component ``node`` describes, like torchtune's ``config.instantiate``.

    Interpolations are resolved, nested component nodes among the arguments are built
    first (without positional arguments), and the call is
    ``component(*args, **{**config_arguments, **kwargs})``: positional arguments come from
    the caller (``instantiate(cfg.optimizer, model.parameters())``,
    ``instantiate(cfg.dataset, tokenizer)``), and ``kwargs`` override the config. A
    tokenizer builder's torchtune ``prompt_template`` is applied to the built tokenizer
    (see :mod:`orchestrator.config.tokenizer_keywords`).

    Args:
        node: A component node (``DictConfig`` or mapping), or None (returns None).
        *args: Positional arguments for the component.
        **kwargs: Keyword arguments that override the node's.

    Raises:
        ConfigError: For a node without ``_component_``, an unresolvable path, or
            arguments that do not bind (unexpected keyword with a suggestion, missing one).
    """
    if node is None:
        return None
    if not is_component(node):
        raise ConfigError(f"cannot instantiate {node!r}: it has no {COMPONENT_KEY} key")
    if isinstance(node, DictConfig):
        try:
            node = OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None) or "?"
            raise ConfigError(f"config key '{key}': {str(err).splitlines()[0]}") from err
    return _build(dict(node), args, kwargs)


def _build(config: dict[str, Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    path = config.pop(COMPONENT_KEY)
    fn, alias = resolve_with_alias(path)
    if alias is not None and alias.note:
        warnings.warn(f"{path}: {alias.note}", UserWarning, stacklevel=3)
    call_kwargs = {key: _build_nested(value) for key, value in config.items()}
    call_kwargs.update(kwargs)
    call_kwargs, template = split_template(fn, call_kwargs)
    problems = unsupported_keywords(fn, call_kwargs) or check_call(fn, args, call_kwargs)
    if problems:
        name = path.rsplit(".", 1)[-1]
        raise ConfigError(f"{name} ({path}): " + "; ".join(message for _, message in problems))
    if template is not None:
        template = build_prompt_template(template)
    return apply_prompt_template(fn(*args, **call_kwargs), template)


def _build_nested(value: Any) -> Any:
    if is_component(value):
        return _build(dict(value), (), {})
    if isinstance(value, list):
        return [_build_nested(item) for item in value]
    if isinstance(value, dict):
        return {key: _build_nested(item) for key, item in value.items()}
    return value
