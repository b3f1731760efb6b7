"""The interface every family's tokenizer offers, and the parts of it they share."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from modeling.data import Message, as_messages
from modeling.tokenizers.chat import ChatSequence, truncate


class ChatTokenizer(ABC):
    """A family's tokenizer: plain text in and out, and its chat format with a loss mask.

    Subclasses set the attributes below, ``special_tokens`` (id -> spelling of every token
    that ``decode`` treats as special) and implement the plain-text hooks and
    ``_format_messages``.

    Attributes:
        bos_id: Beginning-of-sequence id; None for a family without one (Qwen 2.5).
        eos_id: End-of-sequence id.
        pad_id: Id that collation pads with.
        vocab_size: Number of ids this tokenizer can produce (the model's embedding may be
            padded beyond it).
        stop_tokens: Ids that end generation (eos and the family's end-of-turn tokens).
        max_seq_len: ``tokenize_messages`` truncates to this length when set.
        prompt_template: Applied to the messages before the chat format (see
            ``modeling.data.prompt_templates``); None for the chat format alone.
    """

    builder: ClassVar[str]
    family: ClassVar[str]
    # True when the format closes a conversation with an extra eos after the last turn's
    # own end-of-turn token (Llama 3, Phi-3, Gemma); Llama 2 and Mistral end every reply
    # with eos already.
    appends_eos: ClassVar[bool] = True

    bos_id: int | None
    eos_id: int
    pad_id: int
    vocab_size: int
    stop_tokens: list[int]
    special_tokens: dict[int, str]
    prompt_template: Callable[[list[Message]], list[Message]] | None = None

    def __init__(self, max_seq_len: int | None) -> None:
        if max_seq_len is not None and max_seq_len < 1:
            raise ValueError(
                f"{self.builder}: max_seq_len must be a positive number of tokens or None "
                f"(no truncation), got {max_seq_len}"
            )
        self.max_seq_len = max_seq_len

    @abstractmethod
    def _encode_text(self, text: str) -> list[int]:
        """Ids of plain text, without bos/eos."""

    @abstractmethod
    def _encode_with_offsets(self, text: str) -> list[tuple[int, int]]:
        """``(id, end byte offset)`` of each token of plain text (offsets in its UTF-8)."""

    @abstractmethod
    def _decode_text(self, ids: list[int]) -> str:
        """Text of ids that are all non-special."""

    @abstractmethod
    def _format_messages(self, messages: list[Message], sequence: ChatSequence) -> None:
        """Append the family's chat format of ``messages`` to ``sequence``."""

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        """Token ids of ``text``, optionally between bos and eos.

        Special tokens spelled out in ``text`` are encoded as plain text, never as control
        ids, so training data cannot inject them.
        """
        ids = self._encode_text(text)
        bos = [self.bos_id] if add_bos and self.bos_id is not None else []  # Qwen has none
        return bos + ids + [self.eos_id] * add_eos

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``.

        Args:
            ids: Token ids, e.g. a model's output.
            skip_special_tokens: Drop special tokens (bos, eos, pad, role and turn markers)
                from the text, as generation output wants; False writes their spelling.

        Raises:
            ValueError: an id outside ``[0, vocab_size)``.
        """
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(
                f"Cannot decode ids {bad[:5]}: this tokenizer's ids are 0..{self.vocab_size - 1}"
            )
        pieces: list[str] = []
        run: list[int] = []
        for token_id in ids:
            special = self.special_tokens.get(token_id)
            if special is None:
                run.append(token_id)
                continue
            if run:
                pieces.append(self._decode_text(run))
                run = []
            if not skip_special_tokens:
                pieces.append(special)
        if run:
            pieces.append(self._decode_text(run))
        return "".join(pieces)

    def tokenize_messages(
        self, messages: Sequence[Message | Mapping[str, Any]], *, add_end_tokens: bool = True
    ) -> tuple[list[int], list[bool]]:
        """Tokens of a conversation in the family's chat format, and the loss mask.

        ``mask[i]`` is True where token ``i`` takes no loss: headers and other scaffolding
        always, content and end-of-turn tokens per the message's ``masked`` (see
        ``modeling.tokenizers.chat``). A last assistant message with ``eot=False`` stays open
        for generation. When ``max_seq_len`` is set the sequence is truncated to it; a
        sequence ending in eos keeps eos as its last token.

        Args:
            messages: ``Message`` objects or dicts with ``role`` and ``content``.
            add_end_tokens: For Llama 3, Phi-3 and Gemma, append eos (masked) after the last
                turn unless that turn is left open, as torchtune does; False builds a
                prompt. Llama 2 and Mistral close every reply with eos as part of their
                format, so the flag changes nothing for them.

        Raises:
            ValueError: no messages, or an order of roles the family's format cannot express.
        """
        messages = as_messages(list(messages))
        if self.prompt_template is not None:
            messages = list(self.prompt_template(messages))
        if not messages:
            raise ValueError(f"{self.builder}: tokenize_messages got no messages")
        sequence = ChatSequence(self._encode_text, self._encode_with_offsets)
        self._format_messages(messages, sequence)
        if add_end_tokens and self.appends_eos and messages[-1].eot:
            sequence.add_special(self.eos_id, masked=True)
        tokens, mask = sequence.tokens, sequence.mask
        if self.max_seq_len is not None:
            tokens, mask = truncate(tokens, mask, self.max_seq_len, self.eos_id)
        return tokens, mask
