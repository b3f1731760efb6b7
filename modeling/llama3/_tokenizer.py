"""Llama 3's tokenizer: Meta's tiktoken BPE ranks with its special tokens and chat format."""

from pathlib import Path

from modeling.data import Message
from modeling.tokenizers.chat import ChatSequence
from modeling.tokenizers.chat_tokenizer import ChatTokenizer
from modeling.tokenizers.tiktoken_bpe import TikTokenBPE

# Meta's pre-tokenisation regex for Llama 3.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NUM_SPECIAL_TOKENS = 256
_NAMED_SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]
# In id order from num_base: 128000 <|begin_of_text|> ... 128010 <|python_tag|>, then
# <|reserved_special_token_2|> .. <|reserved_special_token_246|> up to 128255.
LLAMA3_SPECIAL_TOKENS = _NAMED_SPECIAL_TOKENS + [
    f"<|reserved_special_token_{2 + i}|>"
    for i in range(NUM_SPECIAL_TOKENS - len(_NAMED_SPECIAL_TOKENS))
]


class Llama3Tokenizer(ChatTokenizer):
    r"""Llama 3 tokenizer and chat format (Meta's ``ChatFormat``).

    Special token ids start at the number of ranks in the file (``num_base``): 128000 for
    Meta's file, so ``<|begin_of_text|>`` is 128000, ``<|eot_id|>`` 128009 and the 256
    special tokens end at 128255; a smaller rank file (tests) shifts them all down alike.
    ``pad_id`` is ``<|finetune_right_pad_id|>`` (128004), as torchtune pads.

    Chat format: ``<|begin_of_text|>``, then per message
    ``<|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>``, each
    piece encoded separately as in Meta's reference; then ``<|end_of_text|>`` when
    ``add_end_tokens`` (torchtune's choice for training). ``ipython`` turns get the
    ``ipython`` header; tool calls ending in ``<|eom_id|>`` and ``<|python_tag|>`` are not
    produced (``<|eom_id|>`` is a stop token all the same).
    """

    builder = "llama3_tokenizer"
    family = "Llama 3"

    def __init__(self, path: str | Path, max_seq_len: int | None = None) -> None:
        super().__init__(max_seq_len)
        self._bpe = TikTokenBPE(
            path, pattern=LLAMA3_PATTERN, special_tokens=LLAMA3_SPECIAL_TOKENS, builder=self.builder
        )
        ids = self._bpe.special_tokens
        self.num_base = self._bpe.num_base
        self.vocab_size = self._bpe.vocab_size
        self.bos_id = ids["<|begin_of_text|>"]
        self.eos_id = ids["<|end_of_text|>"]
        self.pad_id = ids["<|finetune_right_pad_id|>"]
        self.start_header_id = ids["<|start_header_id|>"]
        self.end_header_id = ids["<|end_header_id|>"]
        self.eot_id = ids["<|eot_id|>"]
        self.eom_id = ids["<|eom_id|>"]
        self.python_tag_id = ids["<|python_tag|>"]
        self.stop_tokens = [self.eos_id, self.eot_id, self.eom_id]
        self.special_tokens = {i: token for token, i in ids.items()}

    def _encode_text(self, text: str) -> list[int]:
        return self._bpe.encode(text)

    def _encode_with_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._bpe.encode_with_offsets(text)

    def _decode_text(self, ids: list[int]) -> str:
        return self._bpe.decode(ids)

    def _format_messages(self, messages: list[Message], sequence: ChatSequence) -> None:
        sequence.add_special(self.bos_id, masked=True)
        for message in messages:
            sequence.add_special(self.start_header_id, masked=True)
            sequence.add_text((message.role, True))
            sequence.add_special(self.end_header_id, masked=True)
            sequence.add_text(("\n\n", True))
            sequence.add_text((message.content.strip(), message.masked))
            if message.eot:
                sequence.add_special(self.eot_id, message.masked)


def llama3_tokenizer(path: str | Path, max_seq_len: int | None = None) -> Llama3Tokenizer:
    """Llama 3 tokenizer from Meta's ``tokenizer.model`` (tiktoken BPE ranks).

    Args:
        path: ``original/tokenizer.model`` of a Llama 3 download.
        max_seq_len: ``tokenize_messages`` truncates to this many tokens; None for no limit.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a tiktoken rank file (e.g. a sentencepiece model).
    """
    return Llama3Tokenizer(path, max_seq_len=max_seq_len)
