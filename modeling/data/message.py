"""The chat message type every tokenizer's ``tokenize_messages`` takes."""

from dataclasses import dataclass
from typing import Any

ROLES = ("system", "user", "assistant", "ipython")


@dataclass(frozen=True)
class Message:
    """One turn of a conversation.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``ipython`` (tool output).
        content: The turn's text.
        masked: True when the turn's tokens take no loss. Defaults to True for every role
            but ``assistant``, so fine-tuning learns the replies only.
        eot: Whether the turn ends with the family's end-of-turn token. False leaves an
            assistant turn open for generation.
    """

    role: str
    content: str
    masked: bool | None = None
    eot: bool = True

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(
                f"Unknown message role {self.role!r}; allowed roles: {', '.join(ROLES)}"
            )
        if not isinstance(self.content, str):
            raise ValueError(
                f"Message content must be a string, got {type(self.content).__name__} "
                f"for role {self.role!r}"
            )
        if self.masked is None:
            object.__setattr__(self, "masked", self.role != "assistant")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Message":
        """Build from ``{"role": ..., "content": ..., "masked"?: ..., "eot"?: ...}``."""
        missing = [key for key in ("role", "content") if key not in data]
        if missing:
            raise ValueError(
                f"Message dict is missing {missing}; expected keys 'role' and 'content', "
                f"got {sorted(data)}"
            )
        return cls(
            role=data["role"],
            content=data["content"],
            masked=data.get("masked"),
            eot=data.get("eot", True),
        )


def as_messages(messages: list["Message | dict[str, Any]"]) -> list[Message]:
    """Accept ``Message`` objects or plain dicts and return ``Message`` objects."""
    return [m if isinstance(m, Message) else Message.from_dict(m) for m in messages]
