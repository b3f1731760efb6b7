"""Mistral's tokenizer: its sentencepiece model and the v0.1 ``[INST]`` chat format."""

from pathlib import Path

from modeling.data import Message
from modeling.tokenizers.chat import ChatSequence, check_alternating_turns, split_system_prompt
from modeling.tokenizers.sentencepiece_bpe import SentencePieceTokenizer


class MistralTokenizer(SentencePieceTokenizer):
    r"""Mistral tokenizer and chat format (Mistral 7B v0.1, as ``mistral-common`` encodes it).

    ``<s>`` once, then per user turn ``encode("[INST] {user} [/INST]")`` and per reply
    ``encode(answer)`` followed by ``</s>``: the reply is encoded on its own, so its
    sentencepiece word-start gives the published ``[INST] {user} [/INST] {answer}</s>``.
    Contents are used as given. A system message is prepended to the first user message
    with ``"\n\n"`` (mistral-common prepends it to the last one, which suits generation
    but not training on whole conversations). Turns must alternate user/assistant.
    """

    builder = "mistral_tokenizer"
    family = "Mistral"
    appends_eos = False

    def _format_messages(self, messages: list[Message], sequence: ChatSequence) -> None:
        system, turns = split_system_prompt(messages, self.family)
        check_alternating_turns(turns, self.family)
        sequence.add_special(self.bos_id, masked=True)
        for index, message in enumerate(turns):
            if message.role == "user":
                prefix = []
                if system is not None and index == 0:
                    prefix = [(f"{system.content}\n\n", system.masked)]
                sequence.add_text(
                    ("[INST] ", True),
                    *prefix,
                    (message.content, message.masked),
                    (" [/INST]", True),
                )
            else:
                sequence.add_text((message.content, message.masked))
                if message.eot:
                    sequence.add_special(self.eos_id, message.masked)


def mistral_tokenizer(path: str | Path, max_seq_len: int | None = None) -> MistralTokenizer:
    """Mistral tokenizer from its sentencepiece ``tokenizer.model``.

    Args:
        path: ``tokenizer.model`` of a Mistral 7B download.
        max_seq_len: ``tokenize_messages`` truncates to this many tokens; None for no limit.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a sentencepiece model (e.g. Llama 3's rank file).
    """
    return MistralTokenizer(path, max_seq_len=max_seq_len)
