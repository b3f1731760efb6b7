"""Tokenizers read from a sentencepiece model: the base of Llama 2, Mistral, Phi-3 and Gemma."""

from collections.abc import Mapping
from pathlib import Path

import sentencepiece

from modeling.tokenizers.chat_tokenizer import ChatTokenizer
from modeling.tokenizers.tokenizer_files import (
    SENTENCEPIECE,
    TIKTOKEN_RANKS,
    read_tokenizer_file,
    tokenizer_file_kind,
)

# sentencepiece >= 0.2.3 reports offsets through "offset_mapping"; older releases through
# "immutable_proto" pieces, whose ``end`` is the same byte offset.
_HAS_OFFSET_MAPPING = hasattr(sentencepiece.SentencePieceProcessor, "EncodeAsOffsetMapping")


def load_sentencepiece(path: str | Path, builder: str) -> sentencepiece.SentencePieceProcessor:
    """Load a sentencepiece model, naming the right builder when the file is of another kind.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a sentencepiece model.
    """
    data = read_tokenizer_file(path, builder)
    kind = tokenizer_file_kind(data)
    if kind != SENTENCEPIECE:
        if kind == TIKTOKEN_RANKS:
            found = (
                "it looks like a tiktoken BPE rank file, Llama 3's tokenizer format: read "
                "Llama 3 files with llama3_tokenizer"
            )
        elif kind:
            found = f"it looks like {kind}"
        else:
            found = "it does not parse as one"
        raise ValueError(
            f"{builder}: {str(path)!r} is not a sentencepiece model: {found}. Pass the "
            f"family's sentencepiece tokenizer.model."
        )
    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(data)
    return processor


class SentencePieceTokenizer(ChatTokenizer):
    """A family tokenizer over a sentencepiece model, with optional added tokens.

    ``bos_id``/``eos_id`` come from the model; the model's pad piece is the pad id, and
    models without one (Llama 2, Mistral) pad with ``<unk>`` (id 0): padded positions take
    no loss, so the id only has to be valid. Added tokens (Phi-3's ``<|user|>`` and the
    like) take ids above the model's pieces and are only ever inserted by the chat format.

    Args:
        path: The sentencepiece ``tokenizer.model``.
        max_seq_len: Truncation length of ``tokenize_messages``; None for none.
        added_tokens: Spelling -> id of tokens beyond the model's pieces.
    """

    def __init__(
        self,
        path: str | Path,
        max_seq_len: int | None = None,
        added_tokens: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(max_seq_len)
        self.path = Path(path)
        self._processor = load_sentencepiece(path, self.builder)
        self._num_pieces = self._processor.get_piece_size()
        self.added_tokens = dict(added_tokens or {})
        clashing = {t: i for t, i in self.added_tokens.items() if i < self._num_pieces}
        if clashing:
            raise ValueError(
                f"{self.builder}: {str(path)!r} has {self._num_pieces} pieces, so the "
                f"{self.family} tokens {clashing} would overwrite some; it is not a "
                f"{self.family} tokenizer model"
            )
        self.bos_id = self._processor.bos_id()
        self.eos_id = self._processor.eos_id()
        pad_id = self._processor.pad_id()
        self.pad_id = pad_id if pad_id >= 0 else self._processor.unk_id()
        self.vocab_size = max([self._num_pieces, *(i + 1 for i in self.added_tokens.values())])
        self.stop_tokens = [self.eos_id]
        # Control pieces and <unk>, which Hugging Face also treats as special.
        controls = {self.bos_id, self.eos_id, self.pad_id, self._processor.unk_id()} - {-1}
        self.special_tokens = {i: self._processor.id_to_piece(i) for i in controls}
        self.special_tokens.update({i: token for token, i in self.added_tokens.items()})

    def piece_id(self, piece: str) -> int:
        """Id of a piece the family's format needs from the model.

        Raises:
            ValueError: the model has no such piece, so it is not this family's tokenizer.
        """
        token_id = self._processor.piece_to_id(piece)
        if self._processor.id_to_piece(token_id) != piece:
            raise ValueError(
                f"{self.builder}: {str(self.path)!r} has no {piece!r} piece, which the "
                f"{self.family} chat format needs; it is not a {self.family} tokenizer model"
            )
        return token_id

    def _encode_text(self, text: str) -> list[int]:
        return self._processor.encode(text)

    def _encode_with_offsets(self, text: str) -> list[tuple[int, int]]:
        if _HAS_OFFSET_MAPPING:
            encoded = self._processor.encode(text, out_type="offset_mapping", return_bytes=True)
            pairs = zip(encoded["ids"], encoded["offsets"], strict=True)
            return [(token_id, end) for token_id, (_, end) in pairs]
        pieces = self._processor.encode(text, out_type="immutable_proto").pieces
        return [(piece.id, piece.end) for piece in pieces]

    def _decode_text(self, ids: list[int]) -> str:
        beyond = [i for i in ids if i >= self._num_pieces]
        if beyond:
            raise ValueError(
                f"Cannot decode ids {beyond[:5]}: {str(self.path)!r} has pieces "
                f"0..{self._num_pieces - 1} and added tokens {sorted(self.added_tokens.values())}"
            )
        return self._processor.decode(ids)
