"""Check a loaded config without building anything: ``tune validate``.

Every ``_component_`` is resolved (imported) and its arguments are bound against the
component's signature together with the arguments the recipe passes itself (the tokenizer
to a dataset, parameters to an optimizer, the optimizer and step count to a scheduler),
so a typo in a key or a path is reported with the closest valid name before any weights
are read or workers start. A few run settings are checked for type and range.
"""

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from orchestrator.config.components import COMPONENT_KEY, check_call, resolve_with_alias
from orchestrator.config.errors import ConfigError
from orchestrator.config.suggest import did_you_mean


@dataclass(frozen=True)
class RecipeCall:
    """What the recipe passes to a top-level component besides the config's arguments.

    Attributes:
        positional: Names of the positional arguments, in order (for messages only).
        keywords: Keyword arguments the recipe computes (they override the config's).
    """

    positional: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


# Top-level keys whose component the recipe calls with extra arguments; every other
# component (model, tokenizer, checkpointer, loss, nested ones) is called with none.
RECIPE_CALLS: dict[str, RecipeCall] = {
    "dataset": RecipeCall(positional=("tokenizer",)),
    "optimizer": RecipeCall(positional=("params",)),
    "lr_scheduler": RecipeCall(positional=("optimizer",), keywords=("num_training_steps",)),
}
REQUIRED_COMPONENTS = ("model", "tokenizer", "checkpointer", "dataset", "optimizer")
DTYPES = ("bf16", "fp32")
# Integer run settings and their least allowed value; None allowed for the optional ones.
INT_SETTINGS = {"batch_size": 1, "epochs": 1, "gradient_accumulation_steps": 1}
OPTIONAL_INT_SETTINGS = {
    "max_steps_per_epoch": 1,
    "log_every_n_steps": 1,
    "save_every_n_steps": 1,
    "num_workers": 0,
    "max_failures": -1,
}


def validate_config(cfg: DictConfig) -> list[str]:
    """Check ``cfg`` as a recipe will use it, building nothing.

    Args:
        cfg: A config from :func:`orchestrator.config.load_config`.

    Returns:
        Notes for the user that are not errors, e.g. a torchtune logger that is replaced.

    Raises:
        ConfigError: Naming every problem, one per line, each starting with its key.
    """
    try:
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(f"{key}: {str(err).splitlines()[0]}") from err
    errors: list[str] = []
    notes: list[str] = []
    for name in REQUIRED_COMPONENTS:
        value = container.get(name)
        if name not in container:
            errors.append(f"{name}: missing; a run needs a {name} ({COMPONENT_KEY}: ...)")
        elif not _is_component(value) and not (isinstance(value, list) and value):
            errors.append(f"{name}: must be a node with {COMPONENT_KEY}, got {value!r}")
    if not isinstance(container.get("output_dir"), str):
        errors.append("output_dir: missing; set the directory the run writes to")
    for key, value in container.items():
        _check_tree(value, str(key), RECIPE_CALLS.get(str(key), RecipeCall()), errors, notes)
    _check_settings(container, errors)
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        raise ConfigError(f"{len(errors)} problems:\n" + "\n".join(f"  {e}" for e in errors))
    return notes


def _is_component(value: Any) -> bool:
    return isinstance(value, dict) and COMPONENT_KEY in value


def _check_tree(
    value: Any, key: str, call: RecipeCall, errors: list[str], notes: list[str]
) -> None:
    """Check every component node in ``value``; ``call`` applies to ``value`` itself."""
    if _is_component(value):
        _check_component(value, key, call, errors, notes)
        children = {k: v for k, v in value.items() if k != COMPONENT_KEY}
        for child_key, child in children.items():
            _check_tree(child, f"{key}.{child_key}", RecipeCall(), errors, notes)
    elif isinstance(value, dict):
        for child_key, child in value.items():
            _check_tree(child, f"{key}.{child_key}", RecipeCall(), errors, notes)
    elif isinstance(value, list):
        # A list at the top level (torchtune's concatenated datasets) shares the call.
        for i, item in enumerate(value):
            _check_tree(item, f"{key}[{i}]", call, errors, notes)


def _check_component(
    node: dict, key: str, call: RecipeCall, errors: list[str], notes: list[str]
) -> None:
    path = node[COMPONENT_KEY]
    try:
        fn, alias = resolve_with_alias(path)
    except ConfigError as err:
        errors.append(f"{key}.{COMPONENT_KEY}: {err}")
        return
    if alias is not None and alias.note:
        notes.append(f"{key}: {alias.note}")
    if alias is not None and alias.drop_args:
        return  # the config's arguments belong to the replaced component and are ignored
    arguments = dict(node)
    arguments.pop(COMPONENT_KEY)
    for keyword in call.keywords:
        arguments[keyword] = object()
    positional = tuple(object() for _ in call.positional)
    name = str(path).rsplit(".", 1)[-1]
    for argument, message in check_call(fn, positional, arguments):
        where = f"{key}.{argument}" if argument and argument in node else key
        errors.append(f"{where}: {name}: {message}")


def _check_settings(container: dict, errors: list[str]) -> None:
    dtype = container.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        errors.append(
            f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}.{did_you_mean(str(dtype), DTYPES)}"
        )
    for settings, optional in ((INT_SETTINGS, False), (OPTIONAL_INT_SETTINGS, True)):
        for name, least in settings.items():
            if name not in container or (optional and container[name] is None):
                continue
            value = container[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                allowed = f"an integer >= {least}" + (" or null" if optional else "")
                errors.append(f"{name}: must be {allowed}, got {value!r}")
    gpus = container.get("gpus_per_worker")
    bad_gpus = isinstance(gpus, bool) or not isinstance(gpus, int | float) or gpus < 0
    if gpus is not None and bad_gpus:
        errors.append(f"gpus_per_worker: must be a number >= 0 or null, got {gpus!r}")
