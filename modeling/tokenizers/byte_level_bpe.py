"""GPT-2 byte-level BPE from Hugging Face files (Qwen 2.5's tokenizer format).

The files are ``vocab.json`` + ``merges.txt``, or one ``tokenizer.json``. Text is
NFC-normalised, split into pre-tokens by a family regex, each pre-token's UTF-8 bytes are
spelled with GPT-2's printable byte alphabet and merged by ``merges.txt`` rank, lowest
first (leftmost on ties), exactly as Hugging Face ``tokenizers`` merges a word. Added
tokens that are not control tokens (Qwen's ``<tool_call>``) are matched in text as
``tokenizers`` matches them; control tokens (``<|im_end|>``) never are: they enter a
sequence only as ids from the chat format, so data cannot inject them.
"""

import heapq
import itertools
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex

from modeling.tokenizers.tokenizer_files import (
    HF_TOKENIZER_JSON,
    read_tokenizer_file,
    tokenizer_file_kind,
)

# Pre-tokens cached per tokenizer; Qwen's own tokenizer caches as many.
DEFAULT_CACHE_SIZE = 151_646


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (its byte-level alphabet).

    Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space, ...)
    to the characters from U+0100 on, in byte order, so a space is ``Ġ`` (U+0120).
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {char: byte for byte, char in BYTE_ENCODER.items()}


@dataclass(frozen=True)
class AddedToken:
    """A token outside the BPE vocabulary (``added_tokens`` of a ``tokenizer.json``).

    Attributes:
        content: Its spelling.
        id: Its id.
        special: True for control tokens (turn markers, eos), which are never read from
            text and are dropped by ``decode(skip_special_tokens=True)``; False for tokens
            matched in text like words (Qwen's ``<tool_call>``, FIM markers).
    """

    content: str
    id: int
    special: bool = True


@dataclass(frozen=True)
class BPEFiles:
    """A vocabulary source: the BPE model and, from a tokenizer.json, its added tokens."""

    vocab: dict[str, int]
    merges: list[tuple[str, str]]
    added_tokens: list[AddedToken] | None


def read_bpe_files(path: str | Path, merges_file: str | Path | None, builder: str) -> BPEFiles:
    """Read ``vocab.json`` + ``merges.txt``, or a ``tokenizer.json`` (then no merges file).

    Raises:
        FileNotFoundError: A file is missing.
        ValueError: Naming the file, when it is not of the expected kind or is damaged.
    """
    data = read_tokenizer_file(path, builder)
    kind = tokenizer_file_kind(data)
    if kind != HF_TOKENIZER_JSON:
        found = f"it looks like {kind}" if kind else "it is not JSON"
        raise ValueError(
            f"{builder}: {str(path)!r} is not a Hugging Face vocab.json or tokenizer.json: "
            f"{found}. Pass the model's vocab.json (with merges_file=merges.txt) or its "
            f"tokenizer.json."
        )
    content = _json(data, path, builder)
    if isinstance(content, dict) and isinstance(content.get("model"), dict):
        return _tokenizer_json(content, path, builder)
    vocab = _vocab(content, path, builder)
    if merges_file is None:
        raise ValueError(
            f"{builder}: {str(path)!r} is a vocab.json, which needs its merges: pass "
            f"merges_file (merges.txt from the same model), or pass tokenizer.json as path"
        )
    text = read_tokenizer_file(merges_file, builder).decode("utf-8", errors="strict")
    return BPEFiles(vocab, _merge_lines(text.splitlines(), merges_file, builder), None)


def read_added_tokens(path: str | Path, builder: str) -> list[AddedToken]:
    """The ``added_tokens`` of a ``tokenizer.json`` (torchtune's ``special_tokens_path``).

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file has no ``added_tokens`` list.
    """
    content = _json(read_tokenizer_file(path, builder), path, builder)
    if not isinstance(content, dict) or not isinstance(content.get("added_tokens"), list):
        raise ValueError(
            f"{builder}: {str(path)!r} has no 'added_tokens' list; special_tokens_path must "
            f"be a Hugging Face tokenizer.json (or a JSON file with the same 'added_tokens')"
        )
    return _added_tokens(content["added_tokens"], path, builder)


class ByteLevelBPE:
    """GPT-2 byte-level BPE with a pre-tokenisation regex and added tokens.

    Args:
        files: Vocabulary and merges (see :func:`read_bpe_files`).
        added_tokens: Tokens beyond the vocabulary, control and plain.
        pattern: The pre-tokenisation regex (``regex`` syntax: Unicode classes allowed).
        source: The vocabulary's file, for messages.
        builder: The public builder's name, for messages.
        cache_size: Pre-tokens whose merges are remembered (a cache, cleared when full).

    Raises:
        ValueError: For merges over symbols the vocabulary lacks, a vocabulary without the
            256 byte symbols, or added tokens whose ids collide with the vocabulary's.
    """

    def __init__(
        self,
        files: BPEFiles,
        added_tokens: Sequence[AddedToken],
        *,
        pattern: str,
        source: str | Path,
        builder: str,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.vocab = files.vocab
        self._check(files, added_tokens, source, builder)
        self.merges = list(files.merges)  # in rank order, kept for exporting tokenizer.json
        self.pattern = pattern
        self._ranks = {pair: rank for rank, pair in enumerate(files.merges)}
        self._pattern = regex.compile(pattern)
        self.added_tokens = {t.content: t for t in added_tokens}
        self.special_ids = {t.id: t.content for t in added_tokens if t.special}
        plain = sorted((t.content for t in added_tokens if not t.special), key=len, reverse=True)
        self._plain_added = (
            regex.compile("|".join(regex.escape(t) for t in plain)) if plain else None
        )
        self._id_to_piece: dict[int, bytes] = {
            i: bytes(BYTE_DECODER[c] for c in token) for token, i in self.vocab.items()
        }
        self._id_to_piece.update({t.id: t.content.encode() for t in added_tokens})
        self.vocab_size = max(self._id_to_piece) + 1
        self._cache: dict[str, list[int]] = {}
        self._cache_size = cache_size

    @staticmethod
    def _check(
        files: BPEFiles, added_tokens: Sequence[AddedToken], source: str | Path, builder: str
    ) -> None:
        vocab = files.vocab
        missing = [b for b, char in BYTE_ENCODER.items() if char not in vocab]
        if missing:
            raise ValueError(
                f"{builder}: the vocabulary in {str(source)!r} lacks {len(missing)} of the 256 "
                f"byte symbols (e.g. byte {missing[0]}), so some text has no tokens: it is not "
                f"a byte-level BPE vocabulary"
            )
        foreign = next((t for t in vocab if not all(c in BYTE_DECODER for c in t)), None)
        if foreign is not None:
            raise ValueError(
                f"{builder}: token {foreign!r} of {str(source)!r} is not spelled in GPT-2's byte "
                f"alphabet: it is not a byte-level BPE vocabulary"
            )
        for line, (left, right) in enumerate(files.merges, start=1):
            absent = [s for s in (left, right, left + right) if s not in vocab]
            if absent:
                raise ValueError(
                    f"{builder}: merge {line} ({left!r} {right!r}) of {str(source)!r} uses "
                    f"{absent[0]!r}, which the vocabulary lacks; vocab and merges must come "
                    f"from the same model"
                )
        ids = set(vocab.values())
        clashing = {t.content: t.id for t in added_tokens if t.id in ids}
        clashing = {c: i for c, i in clashing.items() if vocab.get(c) != i}
        if clashing:
            raise ValueError(
                f"{builder}: added tokens {clashing} reuse ids of the vocabulary in "
                f"{str(source)!r}; special tokens and vocabulary come from different models"
            )

    @staticmethod
    def normalize(text: str) -> str:
        """NFC, as Qwen's tokenizer normalises text before splitting it."""
        return unicodedata.normalize("NFC", text)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (control tokens spelled in it are encoded as text)."""
        ids: list[int] = []
        for segment, added in self._segments(self.normalize(text)):
            if added is not None:
                ids.append(added)
                continue
            for match in self._pattern.finditer(segment):
                ids.extend(self._word(match.group()))
        return ids

    def encode_with_offsets(self, text: str) -> list[tuple[int, int]]:
        """``(id, end byte offset)`` per token, offsets in the UTF-8 of ``text``'s NFC form."""
        ids = self.encode(text)
        lengths = [len(self._id_to_piece[i]) for i in ids]
        return list(zip(ids, itertools.accumulate(lengths), strict=True))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; byte sequences that are not UTF-8 decode to U+FFFD."""
        try:
            data = b"".join(self._id_to_piece[i] for i in ids)
        except KeyError as err:
            raise ValueError(f"Cannot decode id {err.args[0]}: no token has it") from None
        return data.decode("utf-8", errors="replace")

    def _segments(self, text: str) -> Iterable[tuple[str, int | None]]:
        """Split ``text`` at plain added tokens: ``(text, None)`` and ``("", id)`` pieces."""
        if self._plain_added is None:
            yield text, None
            return
        start = 0
        for match in self._plain_added.finditer(text):
            if match.start() > start:
                yield text[start : match.start()], None
            yield "", self.added_tokens[match.group()].id
            start = match.end()
        if start < len(text):
            yield text[start:], None

    def _word(self, word: str) -> list[int]:
        """Ids of one pre-token, through the cache."""
        ids = self._cache.get(word)
        if ids is None:
            symbols = "".join(BYTE_ENCODER[b] for b in word.encode())
            ids = [self.vocab[s] for s in self._merge(symbols)]
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def _merge(self, word: str) -> list[str]:
        """Apply merges to one word's symbols: lowest rank first, leftmost on ties.

        A heap of candidate pairs over a linked list of symbols, as ``tokenizers`` merges,
        so a long word (a page of Chinese without punctuation) costs ``n log n``.
        """
        symbols: list[str | None] = list(word)
        if len(symbols) < 2:
            return symbols
        ranks = self._ranks
        count = len(symbols)
        following = [*range(1, count), -1]
        preceding = list(range(-1, count - 1))
        heap = [
            (ranks[pair], i, *pair)
            for i, pair in enumerate(itertools.pairwise(word))
            if pair in ranks
        ]
        heapq.heapify(heap)
        while heap:
            _, i, left, right = heapq.heappop(heap)
            j = following[i]
            if symbols[i] != left or j < 0 or symbols[j] != right:
                continue  # stale: one side has merged since this pair was queued
            symbols[i], symbols[j] = left + right, None
            k = following[i] = following[j]
            if k >= 0:
                preceding[k] = i
            for a, b in ((preceding[i], i), (i, k)):
                if a >= 0 and b >= 0:
                    rank = ranks.get((symbols[a], symbols[b]))
                    if rank is not None:
                        heapq.heappush(heap, (rank, a, symbols[a], symbols[b]))
        return [s for s in symbols if s is not None]


def _json(data: bytes, path: str | Path, builder: str):
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{builder}: {str(path)!r} is not valid JSON ({err}); download it again"
        ) from None


def _vocab(content, path: str | Path, builder: str) -> dict[str, int]:
    valid = isinstance(content, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in content.items()
    )
    if not valid or not content:
        raise ValueError(
            f"{builder}: {str(path)!r} is not a vocab.json (a JSON object of token -> id)"
        )
    if len(set(content.values())) != len(content):
        raise ValueError(f"{builder}: {str(path)!r} gives several tokens the same id")
    return dict(content)


def _merge_lines(lines: Iterable[str], path: str | Path, builder: str) -> list[tuple[str, str]]:
    """Merges from ``merges.txt`` lines (a ``#version`` first line and blank lines skipped)."""
    merges = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(
                f"{builder}: line {number} of {str(path)!r} is not '<left> <right>': {line!r}; "
                f"merges_file must be the model's merges.txt"
            )
        merges.append((parts[0], parts[1]))
    return merges


def _tokenizer_json(content: dict, path: str | Path, builder: str) -> BPEFiles:
    model = content["model"]
    if model.get("type", "BPE") != "BPE" or "merges" not in model:
        raise ValueError(
            f"{builder}: {str(path)!r} holds a {model.get('type')!r} model, not byte-level BPE"
        )
    merges = model["merges"]
    lines = (" ".join(m) if isinstance(m, list) else m for m in merges)
    return BPEFiles(
        _vocab(model.get("vocab"), path, builder),
        _merge_lines(lines, path, builder),
        _added_tokens(content.get("added_tokens") or [], path, builder),
    )


def _added_tokens(entries: list, path: str | Path, builder: str) -> list[AddedToken]:
    tokens = []
    for entry in entries:
        if not isinstance(entry, dict) or not {"id", "content"} <= set(entry):
            raise ValueError(
                f"{builder}: an added token of {str(path)!r} lacks 'id' or 'content': {entry!r}"
            )
        tokens.append(AddedToken(entry["content"], int(entry["id"]), bool(entry.get("special"))))
    return tokens
