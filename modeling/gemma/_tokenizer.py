"""Gemma's tokenizer: its sentencepiece model and the ``<start_of_turn>`` chat format."""

from pathlib import Path

from modeling.data import Message
from modeling.tokenizers.chat import ChatSequence, check_alternating_turns, split_system_prompt
from modeling.tokenizers.sentencepiece_bpe import SentencePieceTokenizer


class GemmaTokenizer(SentencePieceTokenizer):
    r"""Gemma tokenizer and chat format (the template of Gemma's instruction-tuned models).

    ``<bos>``, then per turn ``<start_of_turn>{role}\n{content.strip()}<end_of_turn>\n``
    with ``model`` as the assistant's role; the text between two special tokens is
    encoded in one piece, as the Hugging Face tokenizer encodes the rendered template.
    Gemma has no system role: a system message goes before the first user message's
    content followed by ``"\n\n"`` (Gemma 2/3 templates do the same). ``<eos>`` follows
    the last turn when ``add_end_tokens``. Turns must alternate user/assistant.
    ``<start_of_turn>``/``<end_of_turn>`` are pieces of Gemma's own model (106, 107).
    """

    builder = "gemma_tokenizer"
    family = "Gemma"

    def __init__(self, path: str | Path, max_seq_len: int | None = None) -> None:
        super().__init__(path, max_seq_len)
        self.start_of_turn_id = self.piece_id("<start_of_turn>")
        self.end_of_turn_id = self.piece_id("<end_of_turn>")
        self.stop_tokens = [self.eos_id, self.end_of_turn_id]
        self.special_tokens[self.start_of_turn_id] = "<start_of_turn>"
        self.special_tokens[self.end_of_turn_id] = "<end_of_turn>"

    def _format_messages(self, messages: list[Message], sequence: ChatSequence) -> None:
        system, turns = split_system_prompt(messages, self.family)
        check_alternating_turns(turns, self.family)
        sequence.add_special(self.bos_id, masked=True)
        for index, message in enumerate(turns):
            role = "model" if message.role == "assistant" else "user"
            prefix = []
            if system is not None and index == 0:
                prefix = [(f"{system.content}\n\n", system.masked)]
            sequence.add_special(self.start_of_turn_id, masked=True)
            sequence.add_text(
                (f"{role}\n", True), *prefix, (message.content.strip(), message.masked)
            )
            if message.eot:
                sequence.add_special(self.end_of_turn_id, message.masked)
                sequence.add_text(("\n", message.masked))


def gemma_tokenizer(path: str | Path, max_seq_len: int | None = None) -> GemmaTokenizer:
    """Gemma tokenizer from its sentencepiece ``tokenizer.model``.

    Args:
        path: ``tokenizer.model`` of a Gemma download.
        max_seq_len: ``tokenize_messages`` truncates to this many tokens; None for no limit.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a sentencepiece model, or lacks Gemma's turn pieces.
    """
    return GemmaTokenizer(path, max_seq_len=max_seq_len)
