"""Phi-3 mini's tokenizer: its sentencepiece model, added role tokens and chat format."""

from pathlib import Path

from modeling.data import Message
from modeling.tokenizers.chat import ChatSequence, check_roles
from modeling.tokenizers.sentencepiece_bpe import SentencePieceTokenizer

# The added tokens of microsoft/Phi-3-mini-4k-instruct (tokenizer.json ``added_tokens``),
# fixed ids above the 32000 sentencepiece pieces.
PHI3_ADDED_TOKENS = {
    "<|endoftext|>": 32000,
    "<|assistant|>": 32001,
    "<|placeholder1|>": 32002,
    "<|placeholder2|>": 32003,
    "<|placeholder3|>": 32004,
    "<|placeholder4|>": 32005,
    "<|system|>": 32006,
    "<|end|>": 32007,
    "<|placeholder5|>": 32008,
    "<|placeholder6|>": 32009,
    "<|user|>": 32010,
}


class Phi3MiniTokenizer(SentencePieceTokenizer):
    r"""Phi-3 mini tokenizer and chat format (the Phi-3-mini-4k-instruct template).

    ``<s>``, then per message ``<|{role}|>\n{content}<|end|>\n`` (roles ``system``,
    ``user``, ``assistant``; contents as given), then ``<|endoftext|>`` when
    ``add_end_tokens``, as the template ends a conversation with ``eos_token``. The text
    between two special tokens is encoded in one piece, as the Hugging Face tokenizer
    encodes the rendered template. ``eos_id`` and ``pad_id`` are ``<|endoftext|>`` (32000),
    as in the Hugging Face tokenizer config; ``stop_tokens`` adds ``<|end|>``.
    ``vocab_size`` counts the added tokens (32011); the model's embedding is padded to 32064.
    """

    builder = "phi3_mini_tokenizer"
    family = "Phi-3"

    def __init__(self, path: str | Path, max_seq_len: int | None = None) -> None:
        super().__init__(path, max_seq_len, added_tokens=PHI3_ADDED_TOKENS)
        self.eos_id = self.pad_id = PHI3_ADDED_TOKENS["<|endoftext|>"]
        self.end_id = PHI3_ADDED_TOKENS["<|end|>"]
        self.role_ids = {
            role: PHI3_ADDED_TOKENS[f"<|{role}|>"] for role in ("system", "user", "assistant")
        }
        self.stop_tokens = [self.eos_id, self.end_id]

    def _format_messages(self, messages: list[Message], sequence: ChatSequence) -> None:
        check_roles(messages, tuple(self.role_ids), self.family)
        sequence.add_special(self.bos_id, masked=True)
        for message in messages:
            sequence.add_special(self.role_ids[message.role], masked=True)
            sequence.add_text(("\n", True), (message.content, message.masked))
            if message.eot:
                sequence.add_special(self.end_id, message.masked)
                sequence.add_text(("\n", message.masked))


def phi3_mini_tokenizer(path: str | Path, max_seq_len: int | None = None) -> Phi3MiniTokenizer:
    """Phi-3 mini tokenizer from its sentencepiece ``tokenizer.model``.

    Args:
        path: ``tokenizer.model`` of a Phi-3-mini download.
        max_seq_len: ``tokenize_messages`` truncates to this many tokens; None for no limit.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a sentencepiece model, or has more than 32000 pieces.
    """
    return Phi3MiniTokenizer(path, max_seq_len=max_seq_len)
