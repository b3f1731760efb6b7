"""Map-style datasets that tokenize rows on access into ``{"tokens", "labels"}``.

``labels`` are aligned with ``tokens`` (``labels[i]`` is ``tokens[i]`` or -100 where that
token takes no loss), as in torchtune: shifting by one for next-token prediction is the
recipe's business. Tokenizing on access keeps building a dataset cheap; the rows are checked
when the dataset is built (see ``builders``).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from torch.utils.data import Dataset

from modeling.data import CROSS_ENTROPY_IGNORE_IDX, Message


class Tokenizer(Protocol):
    """The tokenizer interface datasets use (every ``modeling`` tokenizer has it)."""

    pad_id: int
    max_seq_len: int | None

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        """Token ids of ``text``."""

    def tokenize_messages(self, messages: list[Message]) -> tuple[list[int], list[bool]]:
        """Token ids of a conversation and a mask, True where a token takes no loss."""


def effective_max_seq_len(tokenizer: Any, max_seq_len: int | None) -> int | None:
    """``max_seq_len`` if given, else the tokenizer's (None: no limit)."""
    if max_seq_len is not None:
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be a positive number of tokens, got {max_seq_len}")
        return max_seq_len
    return getattr(tokenizer, "max_seq_len", None)


class SFTDataset(Dataset):
    """Rows -> messages -> tokens and labels (torchtune's ``SFTDataset``).

    Args:
        rows: The dataset rows.
        message_transform: Row -> list of ``Message`` (decides which turns take loss).
        tokenizer: Has ``tokenize_messages(messages) -> (tokens, mask)``.
        max_seq_len: Truncate samples to this many tokens (default: the tokenizer's own
            limit, which ``tokenize_messages`` already applies).
        source: Names the data in error messages.
    """

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        message_transform: Callable[[Mapping[str, Any]], list[Message]],
        tokenizer: Tokenizer,
        *,
        max_seq_len: int | None = None,
        source: str = "dataset",
    ) -> None:
        self.rows = rows
        self.message_transform = message_transform
        self.tokenizer = tokenizer
        self.max_seq_len = effective_max_seq_len(tokenizer, max_seq_len)
        self.source = source

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        try:
            messages = self.message_transform(self.rows[index])
        except ValueError as err:
            raise ValueError(f"{self.source}, row {index}: {err}") from err
        tokens, mask = self.tokenizer.tokenize_messages(messages)
        tokens, mask = list(tokens)[: self.max_seq_len], list(mask)[: self.max_seq_len]
        labels = [CROSS_ENTROPY_IGNORE_IDX if m else t for t, m in zip(tokens, mask, strict=True)]
        return {"tokens": tokens, "labels": labels}


class TextCompletionDataset(Dataset):
    """Rows of raw text -> tokens with every token taking loss (continued pre-training).

    Args:
        rows: The dataset rows.
        tokenizer: Has ``encode(text, add_bos, add_eos)``.
        column: The column holding the text.
        add_eos: Append the EOS token (so the model learns where documents end).
        max_seq_len: Truncate to this many tokens (default: the tokenizer's ``max_seq_len``).
        truncate: False keeps whole documents, for packing across packs, where no sequence
            outgrows the pack length however long a document is.
        source: Names the data in error messages.
    """

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        tokenizer: Tokenizer,
        *,
        column: str = "text",
        add_eos: bool = True,
        max_seq_len: int | None = None,
        truncate: bool = True,
        source: str = "dataset",
    ) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.column = column
        self.add_eos = add_eos
        self.max_seq_len = effective_max_seq_len(tokenizer, max_seq_len) if truncate else None
        self.source = source

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        text = self.rows[index][self.column]
        if not isinstance(text, str):
            raise ValueError(
                f"{self.source}, row {index}: column {self.column!r} must hold text, got "
                f"{type(text).__name__}"
            )
        tokens = self.tokenizer.encode(text, add_bos=True, add_eos=self.add_eos)
        tokens = list(tokens)[: self.max_seq_len]
        return {"tokens": tokens, "labels": list(tokens)}
