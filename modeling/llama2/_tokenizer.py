"""Llama 2's tokenizer: its sentencepiece model and Meta's ``[INST]`` chat format."""

from pathlib import Path

from modeling.data import Message
from modeling.tokenizers.chat import (
    ChatSequence,
    check_alternating_turns,
    split_system_prompt,
    strip_parts,
)
from modeling.tokenizers.sentencepiece_bpe import SentencePieceTokenizer

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


class Llama2Tokenizer(SentencePieceTokenizer):
    r"""Llama 2 tokenizer and chat format (Meta's reference ``chat_completion``).

    Each user/assistant pair is ``bos + encode(f"[INST] {user} [/INST] {answer} ") + eos``,
    encoded as one string, with both contents stripped; a system message is folded into
    the first user turn as ``<<SYS>>\n{system}\n<</SYS>>\n\n{user}``. A last user turn
    without a reply is a prompt: ``bos + encode("[INST] {user} [/INST]")``. An open
    (``eot=False``) last reply drops the trailing space and eos. Turns must alternate
    user/assistant, as Meta's reference asserts.
    """

    builder = "llama2_tokenizer"
    family = "Llama 2"
    appends_eos = False

    def _format_messages(self, messages: list[Message], sequence: ChatSequence) -> None:
        system, turns = split_system_prompt(messages, self.family)
        check_alternating_turns(turns, self.family)
        for index in range(0, len(turns), 2):
            user = turns[index]
            reply = turns[index + 1] if index + 1 < len(turns) else None
            prompt = [(user.content, user.masked)]
            if system is not None and index == 0:
                prompt = [(B_SYS, True), (system.content, system.masked), (E_SYS, True), *prompt]
            parts = [(f"{B_INST} ", True), *strip_parts(prompt), (f" {E_INST}", True)]
            if reply is not None:
                answer = reply.content.strip()
                if reply.eot:
                    parts.append((f" {answer} ", reply.masked))
                elif answer:
                    parts.append((f" {answer}", reply.masked))
            sequence.add_special(self.bos_id, masked=True)
            sequence.add_text(*parts)
            if reply is not None and reply.eot:
                sequence.add_special(self.eos_id, reply.masked)


def llama2_tokenizer(path: str | Path, max_seq_len: int | None = None) -> Llama2Tokenizer:
    """Llama 2 tokenizer from its sentencepiece ``tokenizer.model``.

    Args:
        path: ``tokenizer.model`` of a Llama 2 download.
        max_seq_len: ``tokenize_messages`` truncates to this many tokens; None for no limit.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a sentencepiece model (e.g. Llama 3's rank file).
    """
    return Llama2Tokenizer(path, max_seq_len=max_seq_len)
