"""Check a loaded config without building anything: ``tune validate``.

Every ``_component_`` is resolved (imported) and its arguments are bound against the
component's signature together with the arguments the recipe passes itself (the tokenizer
to a dataset, parameters to an optimizer, the optimizer and step count to a scheduler,
the rank to the profiler), so a typo in a key or a path is reported with the closest
valid name before any weights are read or workers start. Files are not opened: a config
whose checkpoint and tokenizer paths do not exist yet still validates. A few run
settings are checked for type and range, and torchtune keys that Tunefleet does not act
on give a note (or an error where ignoring them would change the result).
"""

import inspect
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from orchestrator.config.aliases import PROFILER_COMPONENT
from orchestrator.config.components import COMPONENT_KEY, check_call, resolve_with_alias
from orchestrator.config.errors import ConfigError
from orchestrator.config.suggest import did_you_mean
from orchestrator.config.tokenizer_keywords import (
    build_prompt_template,
    split_template,
    unsupported_keywords,
)


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
    "profiler": RecipeCall(keywords=("rank",)),
}
# A profiler section without _component_ means this one, as in torchtune's recipes.
DEFAULT_COMPONENTS = {"profiler": PROFILER_COMPONENT}
# Top-level components the recipe never builds, with the note tune validate shows.
UNUSED_COMPONENTS = {
    "tensor_parallel_plan": (
        "not used: Tunefleet shards with FSDP2 (HSDP across nodes) and applies no tensor "
        "parallelism"
    ),
}
# torchtune run keys Tunefleet does not act on: (value torchtune ignores too, note).
IGNORED_SETTINGS = {
    "optimizer_in_bwd": (
        False,
        "ignored: the optimizer steps after the backward pass (gradient accumulation and "
        "clipping work as usual)",
    ),
    "enable_activation_offloading": (
        False,
        "ignored: activations stay on the device; enable_activation_checkpointing and "
        "fsdp_cpu_offload save memory instead",
    ),
    "resume_from_checkpoint": (
        False,
        "ignored: a run resumes from its latest checkpoint by itself after a failure",
    ),
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
        key = str(key)
        if key in UNUSED_COMPONENTS:
            if value is not None:
                notes.append(f"{key}: {UNUSED_COMPONENTS[key]}")
            continue
        if key in DEFAULT_COMPONENTS and isinstance(value, dict) and COMPONENT_KEY not in value:
            value = {COMPONENT_KEY: DEFAULT_COMPONENTS[key], **value}
        _check_tree(value, key, RECIPE_CALLS.get(key, RecipeCall()), errors, notes)
    for key, (inert, note) in IGNORED_SETTINGS.items():
        if container.get(key, inert) not in (inert, None):
            notes.append(f"{key}: {note}")
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
    arguments = dict(node)
    arguments.pop(COMPONENT_KEY)
    for keyword in call.keywords:
        arguments[keyword] = object()
    name = str(path).rsplit(".", 1)[-1]
    arguments, template = split_template(fn, arguments)
    if template is not None and not _is_component(template):
        try:
            build_prompt_template(template)
        except ConfigError as err:
            errors.append(f"{key}.prompt_template: {err}")
    positional = tuple(object() for _ in call.positional)
    problems = unsupported_keywords(fn, arguments) or check_call(fn, positional, arguments)
    problems += _var_keyword_problems(fn, arguments)
    for argument, message in problems:
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
    tp_dim = container.get("tensor_parallel_dim")
    if tp_dim is not None and tp_dim != 1:
        errors.append(
            f"tensor_parallel_dim: Tunefleet does not do tensor parallelism, got {tp_dim!r}; "
            f"set it to 1 (FSDP2 shards the model over every GPU)"
        )
    gpus = container.get("gpus_per_worker")
    bad_gpus = isinstance(gpus, bool) or not isinstance(gpus, int | float) or gpus < 0
    if gpus is not None and bad_gpus:
        errors.append(f"gpus_per_worker: must be a number >= 0 or null, got {gpus!r}")


def _var_keyword_problems(fn: Any, arguments: dict) -> list[tuple[str | None, str]]:
    """Keywords that a builder's ``**kwargs`` would reject when it runs.

    Dataset builders pass theirs to the data loader, checkpointers accept torchtune's
    unused keywords: the lists they check are checked here too, so a typo fails now.
    """
    accepted = _var_keywords(getattr(fn, "__module__", "") or "")
    if accepted is None:
        return []
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return []
    if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    named = [n for n, p in params.items() if p.kind != inspect.Parameter.VAR_KEYWORD]
    known = {*named, *accepted}
    return [
        (key, f"unexpected argument '{key}'.{did_you_mean(key, sorted(known))}")
        for key in arguments
        if key not in known
    ]


def _var_keywords(module: str) -> tuple[str, ...] | None:
    """What ``**kwargs`` accepts for components of ``module``; None: not checked."""
    if module.startswith("orchestrator.datasets"):
        from orchestrator.datasets.sources import IGNORED_KWARGS, SUPPORTED_KWARGS

        return (*SUPPORTED_KWARGS, *IGNORED_KWARGS)
    if module.startswith("modeling.checkpointing"):
        from modeling.checkpointing.options import TORCHTUNE_KWARGS

        return tuple(sorted(TORCHTUNE_KWARGS))
    return None
