r"""What every family's chat format is built from: tokens with masks, truncation, turn checks.

Mask rule (all families): ``mask[i]`` is True where token ``i`` takes no loss. Role headers
and other format scaffolding (``<|start_header_id|>assistant<|end_header_id|>\n\n``,
``[INST]``, ``<|assistant|>\n``, ``<start_of_turn>model\n``, the leading ``<bos>``) are
always masked; a turn's content and the tokens that close it (end-of-turn token and what
follows it up to the next turn) take that message's ``masked`` flag, so by default the
model learns each reply and where it ends. An ``eos`` appended after the last turn, or
written over the last token by truncation, is masked: it ends the sequence, not a reply.
"""

import bisect
import itertools
from collections.abc import Callable, Iterable, Sequence

from modeling.data import Message

# Text with the mask of the tokens that start inside it.
Part = tuple[str, bool]
EncodeWithOffsets = Callable[[str], list[tuple[int, int]]]


class ChatSequence:
    """Token ids and loss mask of one conversation, built from special ids and text parts.

    Args:
        encode: Plain-text encoder of the underlying BPE model.
        encode_with_offsets: The same, returning ``(id, end byte offset)`` per token.
    """

    def __init__(self, encode: Callable[[str], list[int]], encode_with_offsets: EncodeWithOffsets):
        self._encode = encode
        self._encode_with_offsets = encode_with_offsets
        self.tokens: list[int] = []
        self.mask: list[bool] = []

    def add_special(self, token_id: int, masked: bool) -> None:
        """Append one special token."""
        self.tokens.append(token_id)
        self.mask.append(masked)

    def add_text(self, *parts: Part) -> None:
        """Encode the concatenated parts in one call, as the reference format does.

        One call keeps tokenisation identical to encoding the whole string. Each token takes
        the mask of the part holding its last byte, so a word-start token that absorbs a
        space of the scaffolding (``▁hello`` in ``[INST] hello``) counts as content.
        """
        text = "".join(text for text, _ in parts)
        if not text:
            return
        masks = {masked for text, masked in parts if text}
        if len(masks) == 1:
            ids = self._encode(text)
            self.tokens.extend(ids)
            self.mask.extend([masks.pop()] * len(ids))
            return
        ends = list(itertools.accumulate(len(text.encode()) for text, _ in parts))
        for token_id, end in self._encode_with_offsets(text):
            part = min(bisect.bisect_right(ends, end - 1), len(parts) - 1)
            self.tokens.append(token_id)
            self.mask.append(parts[part][1])


def strip_parts(parts: Iterable[Part]) -> list[Part]:
    """``str.strip`` of the parts' concatenation, each part keeping its mask."""
    parts = list(parts)
    for index in range(len(parts)):
        text, masked = parts[index]
        parts[index] = (text.lstrip(), masked)
        if parts[index][0]:
            break
    for index in reversed(range(len(parts))):
        text, masked = parts[index]
        parts[index] = (text.rstrip(), masked)
        if parts[index][0]:
            break
    return parts


def truncate(
    tokens: list[int], mask: list[bool], max_seq_len: int, eos_id: int
) -> tuple[list[int], list[bool]]:
    """Keep the first ``max_seq_len`` tokens; a sequence that ended with eos still does.

    The token that eos replaces is cut off mid-reply, so the new eos is masked: training on
    it would teach the model to stop in the middle of an answer.
    """
    if len(tokens) <= max_seq_len:
        return tokens, mask
    ended_with_eos = tokens[-1] == eos_id
    tokens, mask = tokens[:max_seq_len], mask[:max_seq_len]
    if ended_with_eos and tokens[-1] != eos_id:
        tokens[-1] = eos_id
        mask[-1] = True
    return tokens, mask


def split_system_prompt(
    messages: Sequence[Message], family: str
) -> tuple[Message | None, list[Message]]:
    """Separate a leading system message, for formats that fold it into the first user turn.

    Raises:
        ValueError: a system message anywhere but first, or with no user turn after it.
    """
    system = messages[0] if messages and messages[0].role == "system" else None
    rest = list(messages[1:] if system else messages)
    for index, message in enumerate(rest, start=1 if system else 0):
        if message.role == "system":
            raise ValueError(
                f"The {family} chat format takes a system message only as the first message; "
                f"message {index} is a system message. Merge it into the first one."
            )
    if system and (not rest or rest[0].role != "user"):
        raise ValueError(
            f"The {family} chat format folds the system message into the first user turn, "
            f"so a user message must follow it"
        )
    return system, rest


def check_alternating_turns(messages: Sequence[Message], family: str) -> None:
    """Require user, assistant, user, ... as the family's reference template does.

    Raises:
        ValueError: naming the first message out of order.
    """
    for index, message in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.role != expected:
            raise ValueError(
                f"The {family} chat format needs turns alternating user/assistant starting "
                f"with user (after an optional system message); turn {index} (counting from 0, "
                f"system message excluded) is {message.role!r} where {expected!r} belongs"
            )


def check_roles(messages: Sequence[Message], roles: Sequence[str], family: str) -> None:
    """Reject roles the family's format has no header for.

    Raises:
        ValueError: naming the role and the ones the format has.
    """
    for index, message in enumerate(messages):
        if message.role not in roles:
            raise ValueError(
                f"The {family} chat format has no {message.role!r} role (message {index}); "
                f"its roles are {', '.join(roles)}"
            )
