"""A tiny deterministic tokenizer with the ``modeling`` tokenizer interface, for data tests.

Bytes map to ids ``byte + 3``; 0 is padding, 1 BOS, 2 EOS. A conversation is BOS, then for
each message ``<role>`` + content (+ EOS when ``eot``), each token masked as its message.
Decoding inverts it, so tests can read back exactly which text takes loss.
"""

from modeling.data.message import Message, as_messages


class ToyTokenizer:
    pad_id = 0
    bos_id = 1
    eos_id = 2
    vocab_size = 259
    stop_tokens = (2,)

    def __init__(self, max_seq_len: int | None = None) -> None:
        self.max_seq_len = max_seq_len

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        ids = [b + 3 for b in text.encode("utf-8")]
        return [self.bos_id] * add_bos + ids + [self.eos_id] * add_eos

    def decode(self, ids: list[int]) -> str:
        return bytes(i - 3 for i in ids if i >= 3).decode("utf-8", errors="replace")

    def tokenize_messages(self, messages: list[Message | dict]) -> tuple[list[int], list[bool]]:
        tokens, mask = [self.bos_id], [True]
        for message in as_messages(messages):
            ids = self.encode(f"<{message.role}>{message.content}", False, message.eot)
            tokens += ids
            mask += [message.masked] * len(ids)
        if self.max_seq_len is not None:
            tokens, mask = tokens[: self.max_seq_len], mask[: self.max_seq_len]
        return tokens, mask


def trained_text(sample: dict, tokenizer: ToyTokenizer) -> str:
    """The text of the tokens that take loss (labels != -100)."""
    return tokenizer.decode([label for label in sample["labels"] if label != -100])
