"""Transforms from one dataset row to a list of ``Message`` objects (torchtune's names).

Each transform knows the columns it reads (``required_columns``) so builders can check a
dataset before tokenizing it, and takes a ``column_map`` from its expected column names to
the dataset's. Whether a turn takes loss is decided here (``Message.masked``); tokenizers
turn that into the token mask.
"""

import json
from collections.abc import Mapping
from typing import Any

from modeling.data.message import Message

ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
OPENAI_ROLES = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "ipython": "ipython",
    "tool": "ipython",
}
CONVERSATION_STYLES = ("sharegpt", "openai")


def _column_map(expected: tuple[str, ...], column_map: Mapping[str, str] | None) -> dict:
    """Expected column -> dataset column, rejecting keys the transform does not read."""
    column_map = dict(column_map or {})
    unknown = sorted(set(column_map) - set(expected))
    if unknown:
        raise ValueError(
            f"column_map keys {unknown} are not columns this dataset reads; expected keys: "
            f"{', '.join(expected)} (each maps to a column name in your data)"
        )
    return {name: column_map.get(name, name) for name in expected}


def _text(row: Mapping[str, Any], column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise ValueError(f"Column {column!r} must hold text, got {type(value).__name__}")
    return value


def _system(new_system_prompt: str | None) -> list[Message]:
    if new_system_prompt is None:
        return []
    return [Message(role="system", content=new_system_prompt, masked=True)]


class InputOutputToMessages:
    """A user turn from column ``input`` and an assistant turn from column ``output``.

    Args:
        train_on_input: Whether the user turn takes loss.
        column_map: Maps ``input``/``output`` to the dataset's column names.
        new_system_prompt: Optional system turn put first (never takes loss).
    """

    def __init__(
        self,
        train_on_input: bool = False,
        column_map: Mapping[str, str] | None = None,
        new_system_prompt: str | None = None,
    ) -> None:
        self.train_on_input = train_on_input
        self.column_map = _column_map(("input", "output"), column_map)
        self.new_system_prompt = new_system_prompt

    @property
    def required_columns(self) -> list[str]:
        """Dataset columns every row must have."""
        return list(self.column_map.values())

    def __call__(self, row: Mapping[str, Any]) -> list[Message]:
        """Convert one row."""
        return [
            *_system(self.new_system_prompt),
            Message("user", _text(row, self.column_map["input"]), masked=not self.train_on_input),
            Message("assistant", _text(row, self.column_map["output"]), masked=False),
        ]


class AlpacaToMessages:
    """Alpaca rows (``instruction``, ``input``, ``output``) in Alpaca's prompt template.

    The user turn is the template with the instruction (and the input, when non-empty; the
    no-input template otherwise, as in Stanford Alpaca and torchtune); the assistant turn is
    the output. A missing ``input`` column counts as empty unless ``column_map`` names it.

    Args:
        train_on_input: Whether the prompt takes loss (torchtune's Alpaca default: True).
        column_map: Maps ``instruction``/``input``/``output`` to the dataset's column names.
    """

    def __init__(
        self, train_on_input: bool = True, column_map: Mapping[str, str] | None = None
    ) -> None:
        self.train_on_input = train_on_input
        self._input_mapped = bool(column_map) and "input" in column_map
        self.column_map = _column_map(("instruction", "input", "output"), column_map)

    @property
    def required_columns(self) -> list[str]:
        """Dataset columns every row must have."""
        names = (
            ("instruction", "input", "output") if self._input_mapped else ("instruction", "output")
        )
        return [self.column_map[n] for n in names]

    def __call__(self, row: Mapping[str, Any]) -> list[Message]:
        """Convert one row."""
        instruction = _text(row, self.column_map["instruction"])
        extra = row.get(self.column_map["input"]) or ""
        if extra:
            prompt = ALPACA_PROMPT_INPUT.format(instruction=instruction, input=extra)
        else:
            prompt = ALPACA_PROMPT_NO_INPUT.format(instruction=instruction)
        return [
            Message("user", prompt, masked=not self.train_on_input),
            Message("assistant", _text(row, self.column_map["output"]), masked=False),
        ]


class _ConversationToMessages:
    """Shared logic of the chat styles: a column holding a list of turns."""

    style: str
    column_key: str
    role_key: str
    content_key: str
    roles: dict[str, str]

    def __init__(
        self,
        train_on_input: bool = False,
        column_map: Mapping[str, str] | None = None,
        new_system_prompt: str | None = None,
    ) -> None:
        self.train_on_input = train_on_input
        self.column_map = _column_map((self.column_key,), column_map)
        self.new_system_prompt = new_system_prompt

    @property
    def required_columns(self) -> list[str]:
        """Dataset columns every row must have."""
        return [self.column_map[self.column_key]]

    def __call__(self, row: Mapping[str, Any]) -> list[Message]:
        """Convert one row; turns are checked for keys and roles."""
        column = self.column_map[self.column_key]
        turns = row[column]
        if isinstance(turns, str):  # CSV cells hold the conversation as JSON text
            try:
                turns = json.loads(turns)
            except json.JSONDecodeError:
                raise ValueError(
                    f"Column {column!r} holds text that is not a JSON list of turns"
                ) from None
        if not isinstance(turns, list) or not turns:
            raise ValueError(
                f"Column {column!r} must hold a non-empty list of turns, got {turns!r:.80}"
            )
        messages = _system(self.new_system_prompt)
        for turn in turns:
            missing = [
                k
                for k in (self.role_key, self.content_key)
                if not isinstance(turn, Mapping) or k not in turn
            ]
            if missing:
                present = sorted(turn) if isinstance(turn, Mapping) else type(turn).__name__
                raise ValueError(
                    f"A {self.style} turn in column {column!r} lacks {missing}; it has {present}."
                    f" {self.style} turns are {{{self.role_key!r}: ..., {self.content_key!r}: ...}}"
                )
            role = self.roles.get(turn[self.role_key])
            if role is None:
                raise ValueError(
                    f"Unknown role {turn[self.role_key]!r} in {self.style} column {column!r}; "
                    f"allowed roles: {', '.join(self.roles)}"
                )
            if role == "system" and self.new_system_prompt is not None:
                continue  # replaced by the new system prompt
            masked = role != "assistant" and not self.train_on_input
            content = self._content(turn[self.content_key], column)
            messages.append(Message(role=role, content=content, masked=masked))
        return messages

    def _content(self, content: Any, column: str) -> str:
        if not isinstance(content, str):
            raise ValueError(
                f"Turn content in column {column!r} must be text, got {type(content).__name__}"
            )
        return content


class ShareGPTToMessages(_ConversationToMessages):
    """ShareGPT turns ``{"from": human|gpt|system, "value": ...}`` (column ``conversations``).

    Args:
        train_on_input: Whether non-assistant turns take loss.
        column_map: Maps ``conversations`` to the dataset's column name.
        new_system_prompt: Replaces any system turn with this one (never takes loss).
    """

    style, column_key, role_key, content_key = "sharegpt", "conversations", "from", "value"
    roles = SHAREGPT_ROLES


class OpenAIToMessages(_ConversationToMessages):
    """OpenAI chat turns ``{"role": ..., "content": ...}`` (column ``messages``).

    Roles are ``system``, ``user``, ``assistant``, ``ipython`` and ``tool`` (read as
    ``ipython``). Content may be a string or a list of ``{"type": "text", "text": ...}``
    parts, which are joined.

    Args:
        train_on_input: Whether non-assistant turns take loss.
        column_map: Maps ``messages`` to the dataset's column name.
        new_system_prompt: Replaces any system turn with this one (never takes loss).
    """

    style, column_key, role_key, content_key = "openai", "messages", "role", "content"
    roles = OPENAI_ROLES

    def _content(self, content: Any, column: str) -> str:
        if isinstance(content, list):
            kinds = {part.get("type") if isinstance(part, Mapping) else None for part in content}
            if kinds - {"text"}:
                raise ValueError(
                    f"Turn content parts in column {column!r} must all be "
                    f"{{'type': 'text', 'text': ...}}; got types {sorted(map(str, kinds))}"
                )
            return "".join(part["text"] for part in content)
        return super()._content(content, column)


def conversation_transform(
    conversation_style: str,
    conversation_column: str,
    *,
    train_on_input: bool = False,
    new_system_prompt: str | None = None,
) -> _ConversationToMessages:
    """The transform for ``conversation_style`` (``sharegpt`` or ``openai``)."""
    styles = {"sharegpt": ShareGPTToMessages, "openai": OpenAIToMessages}
    if conversation_style not in styles:
        raise ValueError(
            f"Unknown conversation_style {conversation_style!r}; supported: "
            f"{', '.join(CONVERSATION_STYLES)} (sharegpt: from/value turns with roles "
            "human/gpt/system; openai: role/content turns)"
        )
    cls = styles[conversation_style]
    return cls(
        train_on_input=train_on_input,
        column_map={cls.column_key: conversation_column},
        new_system_prompt=new_system_prompt,
    )
