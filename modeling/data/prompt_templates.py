"""torchtune's prompt templates: text put around each message's content before tokenizing.

A template maps a role to a ``(prepend, append)`` pair of strings; calling it on a list of
:class:`~modeling.data.Message` returns new messages whose content is wrapped in them.
The added text belongs to its message, so it takes that message's loss mask (tags around
a user turn are masked; tags around an assistant turn are learned, as torchtune notes).
A tokenizer with ``prompt_template`` set applies it in ``tokenize_messages``, and its own
chat format (``[INST]``, Llama 3 headers, ...) is then built around the templated turns.

``Llama2ChatTemplate``, ``MistralChatTemplate`` and ``ChatMLTemplate`` spell a family's
chat format out as text; their ``native_to`` names the tokenizers that already produce
that format (with real special tokens), on which setting them changes nothing.
"""

from collections.abc import Mapping, Sequence
from typing import ClassVar

from modeling.data.message import ROLES, Message

Template = Mapping[str, tuple[str, str]]


def _wrap(message: Message, prepend: str, append: str) -> Message:
    return Message(
        role=message.role,
        content=f"{prepend}{message.content}{append}",
        masked=message.masked,
        eot=message.eot,
    )


class PromptTemplate:
    r"""A custom template: ``{role: (prepend, append)}`` for any of the roles.

    Args:
        template: e.g. ``{"user": ("Question: ", "\n\nAnswer: ")}``; roles left out are
            unchanged.

    Raises:
        ValueError: An unknown role, or a value that is not two strings.
    """

    native_to: ClassVar[tuple[str, ...]] = ()

    def __init__(self, template: Template) -> None:
        if not isinstance(template, Mapping):
            raise ValueError(
                f"A prompt template maps roles to [prepend, append] strings, got {template!r}"
            )
        checked: dict[str, tuple[str, str]] = {}
        for role, tags in template.items():
            if role not in ROLES:
                raise ValueError(f"Prompt template role {role!r} is not one of {', '.join(ROLES)}")
            if (
                isinstance(tags, str)
                or not isinstance(tags, Sequence)
                or len(tags) != 2
                or not all(isinstance(tag, str) for tag in tags)
            ):
                raise ValueError(
                    f"Prompt template role {role!r} needs [prepend, append] (two strings), "
                    f"got {tags!r}"
                )
            checked[role] = (tags[0], tags[1])
        self.template = checked

    def __call__(self, messages: Sequence[Message], inference: bool = False) -> list[Message]:
        """The messages with each role's tags around their content."""
        return [
            _wrap(m, *self.template[m.role]) if m.role in self.template else m for m in messages
        ]


class GrammarErrorCorrectionTemplate(PromptTemplate):
    r"""``Correct this to standard English: {user}\n---\nCorrected: {assistant}``."""

    def __init__(self, template: Template | None = None) -> None:
        super().__init__(
            template or {"user": ("Correct this to standard English: ", "\n---\nCorrected: ")}
        )


class SummarizeTemplate(PromptTemplate):
    r"""``Summarize this dialogue:\n{user}\n---\nSummary:\n{assistant}``."""

    def __init__(self, template: Template | None = None) -> None:
        super().__init__(template or {"user": ("Summarize this dialogue:\n", "\n---\nSummary:\n")})


class QuestionAnswerTemplate(PromptTemplate):
    r"""``Question: {user}\n\nAnswer: {assistant}``."""

    def __init__(self, template: Template | None = None) -> None:
        super().__init__(template or {"user": ("Question: ", "\n\nAnswer: ")})


class ChatMLTemplate:
    r"""OpenAI's Chat Markup Language as text: ``<|im_start|>{role}\n{content}<|im_end|>\n``.

    A last, empty assistant message gets only its opening tag, so a model continues it.
    """

    native_to: ClassVar[tuple[str, ...]] = ("qwen2_5_tokenizer",)
    template: ClassVar[dict[str, tuple[str, str]]] = {
        "system": ("<|im_start|>system\n", "<|im_end|>\n"),
        "user": ("<|im_start|>user\n", "<|im_end|>\n"),
        "assistant": ("<|im_start|>assistant\n", "<|im_end|>\n"),
        "ipython": ("", ""),
    }

    def __call__(self, messages: Sequence[Message], inference: bool = False) -> list[Message]:
        """The messages in ChatML tags."""
        out = []
        for index, message in enumerate(messages):
            prepend, append = self.template[message.role]
            is_open = (
                message.role == "assistant" and index == len(messages) - 1 and not message.content
            )
            out.append(_wrap(message, prepend, "" if is_open else append))
        return out


class Llama2ChatTemplate:
    """Llama 2's ``[INST]`` format as text, as torchtune's template of this name writes it.

    The system message is dropped as a turn and written, in ``<<SYS>>`` tags, at the start
    of every user turn after it; user turns become ``[INST] {content} [/INST] ``.
    """

    native_to: ClassVar[tuple[str, ...]] = ("llama2_tokenizer",)
    system_tags: ClassVar[tuple[str, str]] = ("<<SYS>>\n", "\n<</SYS>>\n\n")
    user_tags: ClassVar[tuple[str, str]] = ("[INST] ", " [/INST] ")

    def __call__(self, messages: Sequence[Message], inference: bool = False) -> list[Message]:
        """The messages in ``[INST]`` / ``<<SYS>>`` text."""
        system = ""
        out = []
        for message in messages:
            if message.role == "system":
                system = self._system(message)
                continue
            if message.role == "user":
                message = _wrap(message, self.user_tags[0] + system, self.user_tags[1])
            out.append(message)
        return out

    def _system(self, message: Message) -> str:
        return f"{self.system_tags[0]}{message.content}{self.system_tags[1]}"


class MistralChatTemplate(Llama2ChatTemplate):
    """Mistral's ``[INST] {user} [/INST] `` format as text; it has no system messages.

    Raises:
        ValueError: On a system message, as torchtune's template does.
    """

    native_to: ClassVar[tuple[str, ...]] = ("mistral_tokenizer",)

    def _system(self, message: Message) -> str:
        raise ValueError(
            "MistralChatTemplate has no system role; fold the system prompt into the first "
            "user message or use a different prompt_template"
        )
