"""Keywords of torchtune's tokenizer builders that this project's builders do not take.

torchtune's ``*_tokenizer`` builders take ``prompt_template``: a dotted path of a template
class (``torchtune.data.SummarizeTemplate``, ``torchtune.models.llama2.Llama2ChatTemplate``),
a ``{role: [prepend, append]}`` mapping, or null. This project's builders apply their
family's chat format themselves, so the config layer takes the keyword off the call,
builds the template (:mod:`modeling.data.prompt_templates`) and sets it on the tokenizer,
which applies it in ``tokenize_messages``. A template that spells out the tokenizer's own
chat format (``Llama2ChatTemplate`` on ``llama2_tokenizer``, torchtune's default there) is
what the tokenizer already does and is not applied twice.

Other torchtune tokenizer keywords with no equivalent fail with a message naming the fix.
"""

import inspect
from collections.abc import Callable, Mapping
from typing import Any

PROMPT_TEMPLATE = "prompt_template"
UNSUPPORTED_KEYWORDS = {
    "special_tokens_path": (
        "is not supported: Tunefleet's tokenizers take the family's published special "
        "tokens from the tokenizer file itself; remove the key"
    ),
}


def is_tokenizer_builder(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is a tokenizer builder (named ``*_tokenizer``, as torchtune's are)."""
    return getattr(fn, "__name__", "").endswith("_tokenizer")


def takes_keyword(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` has a parameter ``name`` (a ``**kwargs`` does not count)."""
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def split_template(fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``kwargs`` without ``prompt_template`` when the config layer applies it, and its value.

    Returns:
        The arguments to call ``fn`` with, and the template spec (None when there is none
        or ``fn`` takes the keyword itself).
    """
    if PROMPT_TEMPLATE not in kwargs or not is_tokenizer_builder(fn):
        return kwargs, None
    if takes_keyword(fn, PROMPT_TEMPLATE):
        return kwargs, None
    rest = dict(kwargs)
    return rest, rest.pop(PROMPT_TEMPLATE)


def unsupported_keywords(
    fn: Callable[..., Any], kwargs: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """``(keyword, message)`` for each torchtune tokenizer keyword ``fn`` cannot take."""
    if not is_tokenizer_builder(fn):
        return []
    return [
        (key, f"'{key}' {message}")
        for key, message in UNSUPPORTED_KEYWORDS.items()
        if key in kwargs and not takes_keyword(fn, key)
    ]


def build_prompt_template(spec: Any) -> Callable[..., Any] | None:
    """The template a ``prompt_template`` value names.

    Args:
        spec: None; a dotted path of a template class (torchtune paths resolve through the
            aliases), called with no arguments; a ``{role: [prepend, append]}`` mapping; or
            an already built template (a ``_component_`` node the config layer built).

    Raises:
        ConfigError: For a path that does not resolve, or a mapping that is not a template.
    """
    from modeling.data.prompt_templates import PromptTemplate
    from orchestrator.config.components import resolve_component
    from orchestrator.config.errors import ConfigError

    if spec is None:
        return None
    if isinstance(spec, str):
        return resolve_component(spec)()
    if isinstance(spec, Mapping):
        try:
            return PromptTemplate(dict(spec))
        except ValueError as err:
            raise ConfigError(str(err)) from err
    if callable(spec):
        return spec
    raise ConfigError(
        f"prompt_template must be a dotted path (torchtune.data.SummarizeTemplate), a "
        f"{{role: [prepend, append]}} mapping or null, got {spec!r}"
    )


def apply_prompt_template(tokenizer: Any, template: Callable[..., Any] | None) -> Any:
    """Set ``template`` on ``tokenizer`` unless it is the tokenizer's own chat format.

    Raises:
        ConfigError: When the built object is not a chat tokenizer.
    """
    from orchestrator.config.errors import ConfigError

    if template is None:
        return tokenizer
    if not hasattr(tokenizer, "tokenize_messages"):
        raise ConfigError(
            f"prompt_template needs a chat tokenizer; {type(tokenizer).__name__} has no "
            f"tokenize_messages"
        )
    if getattr(tokenizer, "builder", None) not in getattr(template, "native_to", ()):
        tokenizer.prompt_template = template
    return tokenizer
