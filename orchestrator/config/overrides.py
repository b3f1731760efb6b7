"""Command-line overrides: ``key=value``, ``~key``, ``+key=value`` and ``++key=value``.

The syntax is omegaconf/Hydra's, which torchtune users type: dotted keys, values parsed
as YAML (``lora_rank=16``, ``lr=1e-4``, ``model.lora_attn_modules=[q_proj,v_proj]``,
``max_steps_per_epoch=null``, ``checkpointer.output_dir=${output_dir}/ckpt``).

- ``key=value`` replaces an existing value (a mapping or list replaces the old one
  whole). A key that does not exist is an error naming the closest existing key, except
  directly under a component node (one with ``_component_``): there it becomes a new
  builder argument, which ``validate`` checks binds.
- ``+key=value`` adds a key that does not exist yet (creating parents), and
  ``++key=value`` sets a key whether or not it exists.
- ``~key`` deletes a key.
"""

import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from orchestrator.config.errors import ConfigError
from orchestrator.config.suggest import closest

COMPONENT_KEY = "_component_"
Action = Literal["set", "add", "force", "delete"]
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


class _ValueLoader(yaml.SafeLoader):
    """YAML scalars as omegaconf reads them: ``1e-4`` is a float, not a string."""


_ValueLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class Override:
    """One parsed override.

    Attributes:
        text: What the user wrote, for error messages.
        action: ``set``, ``add`` (``+``), ``force`` (``++``) or ``delete`` (``~``).
        key: Dotted key; list items by index (``model.lora_attn_modules.0``).
        value: The parsed value (None for deletes).
    """

    text: str
    action: Action
    key: str
    value: Any = None


def parse_value(text: str) -> Any:
    """Parse an override value as a YAML scalar, list or mapping (omegaconf's rules).

    Raises:
        ConfigError: If the text is not valid YAML (e.g. an unclosed ``[``).
    """
    try:
        return yaml.load(text, Loader=_ValueLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(
            f"value {text!r} is not valid YAML ({getattr(err, 'problem', None) or err}); "
            "quote it if it is meant as a string"
        ) from err


def parse_override(text: str) -> Override:
    """Parse one ``key=value`` / ``~key`` / ``+key=value`` / ``++key=value`` argument.

    Raises:
        ConfigError: Naming the argument, for a missing ``=`` or a malformed key.
    """
    if text.startswith("~"):
        action: Action = "delete"
        key, sep, raw = text[1:].partition("=")
        if sep:
            raise ConfigError(f"override {text!r}: write ~{key} (no value) to delete a key")
    else:
        action = "set"
        if text.startswith("++"):
            action, text_key = "force", text[2:]
        elif text.startswith("+"):
            action, text_key = "add", text[1:]
        else:
            text_key = text
        key, sep, raw = text_key.partition("=")
        if not sep:
            raise ConfigError(
                f"override {text!r} has no '=': write key=value to set, ~key to delete"
            )
    key = key.strip()
    if not _KEY_PATTERN.match(key):
        raise ConfigError(f"override {text!r}: {key!r} is not a dotted key (like model.lora_rank)")
    value = None
    if action != "delete":
        try:
            value = parse_value(raw)
        except ConfigError as err:
            raise ConfigError(f"override {text!r}: {err}") from err
    return Override(text=text, action=action, key=key, value=value)


def apply_overrides(cfg: DictConfig, overrides: list[str] | tuple[str, ...]) -> DictConfig:
    """Apply overrides in order to ``cfg`` (in place) and return it.

    Raises:
        ConfigError: Naming the override and the closest existing key, for a key that does
            not exist (outside component nodes) or a ``+key`` that already exists.
    """
    for text in overrides:
        _apply(cfg, parse_override(text))
    return cfg


def _apply(cfg: DictConfig, override: Override) -> None:
    parts = override.key.split(".")
    parent, missing_at = _walk(cfg, parts[:-1])
    last = parts[-1]
    if not isinstance(parent, DictConfig | ListConfig):
        holder = ".".join(parts[: len(parts) - 1 if missing_at is None else missing_at])
        raise ConfigError(
            f"override {override.text!r}: {holder} is a value ({parent!r}), not a mapping"
        )
    if missing_at is not None:
        if override.action in ("add", "force"):
            OmegaConf.update(cfg, override.key, override.value, merge=False)
            return
        _unknown_key(override, parent, parts[:missing_at], parts[missing_at])
    exists = _has(parent, last)
    if override.action == "delete":
        if not exists:
            _unknown_key(override, parent, parts[:-1], last)
        del parent[int(last) if isinstance(parent, ListConfig) else last]
        return
    if override.action == "add" and exists:
        raise ConfigError(
            f"override {override.text!r}: {override.key} already exists; write "
            f"{override.key}=... to change it (or ++{override.key}=... to set it either way)"
        )
    if not exists and override.action == "set" and not _is_component(parent):
        _unknown_key(override, parent, parts[:-1], last)
    if isinstance(parent, ListConfig):
        if not exists:
            raise ConfigError(
                f"override {override.text!r}: index {last} is outside the list "
                f"{'.'.join(parts[:-1])} of length {len(parent)}"
            )
        parent[int(last)] = override.value
    else:
        parent[last] = override.value


def _walk(cfg: DictConfig, parts: list[str]) -> tuple[Any, int | None]:
    """Follow ``parts`` from ``cfg``; return the deepest node and where the path broke."""
    node: Any = cfg
    for i, part in enumerate(parts):
        if not _has(node, part):
            return node, i
        node = node[int(part) if isinstance(node, ListConfig) else part]
    return node, None


def _has(node: Any, key: str) -> bool:
    if isinstance(node, ListConfig):
        return key.isdigit() and int(key) < len(node)
    return isinstance(node, DictConfig) and key in node


def _is_component(node: Any) -> bool:
    return isinstance(node, DictConfig) and COMPONENT_KEY in node


def _unknown_key(override: Override, parent: Any, prefix: list[str], missing: str) -> None:
    where = ".".join(prefix)
    siblings = [str(k) for k in parent] if isinstance(parent, DictConfig) else []
    match = closest(missing, siblings)
    hint = f" Did you mean '{where + '.' if where else ''}{match}'?" if match else ""
    full = f"{where}.{missing}" if where else missing
    scope = f"under '{where}'" if where else "at the top level"
    add = "" if override.action == "delete" else f" To add it, write +{override.text}."
    raise ConfigError(
        f"override {override.text!r}: the config has no key '{full}' ({scope}).{hint}{add}"
    )
