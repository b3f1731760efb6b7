"""A byte-level BPE read from a tiktoken rank file (the format of Llama 3's tokenizer.model).

The file has one ``<base64 token bytes> <rank>`` line per token. Special tokens take the ids
right after the ranks: the first special token's id is the number of ranks (Meta's rule,
``num_base_tokens = len(mergeable_ranks)``), which is 128000 for Llama 3's real file and
``len(ranks)`` for the tiny files tests write.
"""

import base64
import binascii
import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import tiktoken

from modeling.tokenizers.tokenizer_files import (
    TIKTOKEN_RANKS,
    read_tokenizer_file,
    tokenizer_file_kind,
)

# tiktoken's pre-tokenisation regex backtracks on long runs of whitespace (and the BPE of one
# huge pre-token is slow), so text is encoded in chunks of at most MAX_ENCODE_CHARS and runs
# of more than MAX_RUN_CHARS consecutive whitespace or non-whitespace characters are cut,
# exactly where Meta's reference tokenizer and torchtune cut them.
MAX_ENCODE_CHARS = 400_000
MAX_RUN_CHARS = 25_000


_WHITESPACE_RUN = re.compile(r"\s*")
_NON_WHITESPACE_RUN = re.compile(r"\S*")


def _long_runs(text: str, max_run: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of (non-)whitespace longer than ``max_run`` characters.

    Any such run covers a multiple of ``max_run``, so only those positions are examined:
    the run through each is measured both ways with C-speed regex matches (backwards on the
    reversed text), which keeps the cost far below a scan of every character in Python.
    """
    runs: list[tuple[int, int]] = []
    backwards = text[::-1]
    for position in range(0, len(text), max_run):
        if runs and position < runs[-1][1]:
            continue
        pattern = _WHITESPACE_RUN if text[position].isspace() else _NON_WHITESPACE_RUN
        end = pattern.match(text, position).end()
        start = len(text) - pattern.match(backwards, len(text) - 1 - position).end()
        if end - start > max_run:
            runs.append((start, end))
    return runs


def split_long_runs(text: str, max_run: int = MAX_RUN_CHARS) -> Iterator[str]:
    """Cut ``text`` inside each run of more than ``max_run`` (non-)whitespace characters.

    Cuts fall every ``max_run`` characters from the start of such a run, as in Meta's
    ``_split_whitespaces_or_nonwhitespaces``, so tokens match the reference tokenizer.
    """
    start = 0
    for run_start, run_end in _long_runs(text, max_run):
        for cut in range(run_start + max_run, run_end, max_run):
            yield text[start:cut]
            start = cut
    yield text[start:]


def load_ranks(data: bytes, path: str | Path, builder: str) -> dict[bytes, int]:
    """Parse a tiktoken rank file; ranks must be exactly 0..N-1 so special ids follow them."""
    kind = tokenizer_file_kind(data)
    if kind != TIKTOKEN_RANKS:
        found = f"it looks like {kind}" if kind else "its first line is not '<base64> <rank>'"
        hint = (
            "; that is the format of the Llama 2, Mistral, Phi-3 and Gemma tokenizers: use "
            "the sentencepiece-based tokenizer of that family (llama2_tokenizer, "
            "mistral_tokenizer, phi3_mini_tokenizer, gemma_tokenizer)"
            if kind
            else ""
        )
        raise ValueError(
            f"{builder}: {str(path)!r} is not a tiktoken BPE rank file: {found}{hint}. "
            f"Llama 3 needs Meta's tokenizer.model (original/tokenizer.model in the Hugging "
            f"Face repository)."
        )
    ranks: dict[bytes, int] = {}
    for line_number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError("expected two fields")
            ranks[base64.b64decode(fields[0], validate=True)] = int(fields[1])
        except (ValueError, binascii.Error) as error:
            raise ValueError(
                f"{builder}: line {line_number} of {str(path)!r} is not "
                f"'<base64 token> <rank>' ({error}); the file is damaged, download it again"
            ) from None
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(
            f"{builder}: the ranks in {str(path)!r} are not 0..{len(ranks) - 1} with each "
            f"token once; special token ids follow the ranks, so they must be contiguous"
        )
    return ranks


class TikTokenBPE:
    """tiktoken encoding of a rank file with special tokens numbered after the ranks.

    Text is encoded without recognising special tokens: a special token's spelling in user
    text is encoded as plain text, so data cannot inject control tokens. Special tokens
    enter a sequence only as ids, from the chat format.

    Args:
        path: The rank file.
        pattern: The pre-tokenisation regex.
        special_tokens: Special token strings, numbered from ``num_base`` in order.
        builder: The public builder's name, for error messages.
    """

    def __init__(
        self, path: str | Path, *, pattern: str, special_tokens: Sequence[str], builder: str
    ) -> None:
        ranks = load_ranks(read_tokenizer_file(path, builder), path, builder)
        self.ranks = ranks  # byte piece -> rank, kept for exporting tokenizer.json
        self.pattern = pattern
        self.num_base = len(ranks)
        self.special_tokens = {
            token: self.num_base + index for index, token in enumerate(special_tokens)
        }
        self.vocab_size = self.num_base + len(self.special_tokens)
        self._encoding = tiktoken.Encoding(
            name=Path(path).name,
            pat_str=pattern,
            mergeable_ranks=ranks,
            special_tokens=self.special_tokens,
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, in bounded pieces so any input takes linear time."""
        ids: list[int] = []
        for start in range(0, len(text), MAX_ENCODE_CHARS):
            for piece in split_long_runs(text[start : start + MAX_ENCODE_CHARS]):
                ids.extend(self._encoding.encode_ordinary(piece))
        return ids

    def encode_with_offsets(self, text: str) -> list[tuple[int, int]]:
        """``(id, byte offset in text's UTF-8 where the token ends)`` for each token."""
        ids = self.encode(text)
        lengths = [len(token) for token in self._encoding.decode_tokens_bytes(ids)]
        return list(zip(ids, itertools.accumulate(lengths), strict=True))

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; special ids decode to their spelling, bad UTF-8 to U+FFFD."""
        return self._encoding.decode(ids)
