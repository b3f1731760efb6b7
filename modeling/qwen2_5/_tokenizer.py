"""Qwen 2.5's tokenizer: byte-level BPE (``vocab.json`` + ``merges.txt``) and ChatML."""

from collections.abc import Mapping
from pathlib import Path

from modeling.data import Message
from modeling.tokenizers.byte_level_bpe import (
    DEFAULT_CACHE_SIZE,
    AddedToken,
    ByteLevelBPE,
    read_added_tokens,
    read_bpe_files,
)
from modeling.tokenizers.chat import ChatSequence
from modeling.tokenizers.chat_tokenizer import ChatTokenizer

# Qwen 2's pre-tokenisation regex (transformers' ``tokenization_qwen2.PRETOKENIZE_REGEX``):
# Llama 3's, but with single digits.
QWEN2_5_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
# Qwen 2.5's added tokens in id order (151643 ... 151664 after its 151643 BPE tokens), and
# whether each is a control token. As in its tokenizer.json, the tool-call and
# fill-in-the-middle markers are plain: matched in text and kept by decode.
QWEN2_5_ADDED_TOKENS = (
    (ENDOFTEXT, True),
    (IM_START, True),
    (IM_END, True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
# The system turn Qwen 2.5's chat template writes when a conversation has none.
DEFAULT_SYSTEM_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


class Qwen2_5Tokenizer(ChatTokenizer):  # noqa: N801 (torchtune's class name)
    r"""Qwen 2.5 tokenizer and its ChatML format (the published ``chat_template``).

    Each message is ``<|im_start|>{role}\n{content}<|im_end|>\n``, content unstripped;
    a conversation without a leading system message starts with Qwen's default one
    (:data:`DEFAULT_SYSTEM_PROMPT`, masked); consecutive ``ipython`` (tool) messages share
    one ``user`` turn, each as ``\n<tool_response>\n{content}\n</tool_response>``. The text
    between two control tokens is encoded in one piece, as ``apply_chat_template`` output
    is. Every turn ends with ``<|im_end|>`` (the eos, as in Qwen's instruct models and
    torchtune), so nothing is appended after the last; ``\n`` after it takes the turn's
    mask. Qwen has no bos: ``bos_id`` is None and ``encode`` never adds one.

    Args:
        path: ``vocab.json``, or ``tokenizer.json`` (then ``merges_file`` is not needed).
        merges_file: ``merges.txt`` of the same model.
        special_tokens: Spelling -> id of the added tokens; None for those of ``path``'s
            tokenizer.json, else Qwen 2.5's 22, numbered after the vocabulary (151643 on).
        max_seq_len: ``tokenize_messages`` truncates to this many tokens; None for none.
        bos_token: Spelling of a bos token to use, if any (Qwen has none).
        eos_token: Spelling of the eos token.
        pad_token: Spelling of the padding token.
        bpe_cache_size: Pre-tokens whose merges are remembered.
    """

    builder = "qwen2_5_tokenizer"
    family = "Qwen 2.5"
    appends_eos = False

    def __init__(
        self,
        path: str | Path,
        merges_file: str | Path | None = None,
        special_tokens: Mapping[str, int] | list[AddedToken] | None = None,
        max_seq_len: int | None = None,
        *,
        bos_token: str | None = None,
        eos_token: str = IM_END,
        pad_token: str = ENDOFTEXT,
        bpe_cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(max_seq_len)
        files = read_bpe_files(path, merges_file, self.builder)
        added = self._added_tokens(files, special_tokens)
        self._bpe = ByteLevelBPE(
            files,
            added,
            pattern=QWEN2_5_PATTERN,
            source=path,
            builder=self.builder,
            cache_size=bpe_cache_size,
        )
        ids = {t.content: t.id for t in added}
        missing = [t for t in (ENDOFTEXT, IM_START, IM_END, eos_token, pad_token) if t not in ids]
        if bos_token is not None and bos_token not in ids:
            missing.append(bos_token)
        if missing:
            raise ValueError(
                f"{self.builder}: the added tokens of {str(path)!r} lack {missing}; Qwen's "
                f"chat format needs them. Is it a Qwen 2.5 tokenizer?"
            )
        self.vocab_size = self._bpe.vocab_size
        self.bos_id = None if bos_token is None else ids[bos_token]
        self.eos_id = ids[eos_token]
        self.pad_id = ids[pad_token]
        self.im_start_id = ids[IM_START]
        self.im_end_id = ids[IM_END]
        self.endoftext_id = ids[ENDOFTEXT]
        self.stop_tokens = list(dict.fromkeys([self.eos_id, self.im_end_id, self.endoftext_id]))
        self.special_tokens = dict(self._bpe.special_ids)

    def _added_tokens(self, files, special_tokens) -> list[AddedToken]:
        if special_tokens is None and files.added_tokens is not None:
            return files.added_tokens
        if special_tokens is None:
            first = max(files.vocab.values()) + 1
            return [
                AddedToken(content, first + i, special)
                for i, (content, special) in enumerate(QWEN2_5_ADDED_TOKENS)
            ]
        if isinstance(special_tokens, Mapping):
            plain = {content for content, special in QWEN2_5_ADDED_TOKENS if not special}
            return [AddedToken(c, int(i), c not in plain) for c, i in special_tokens.items()]
        return list(special_tokens)

    def _encode_text(self, text: str) -> list[int]:
        return self._bpe.encode(text)

    def _encode_with_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._bpe.encode_with_offsets(text)

    def _decode_text(self, ids: list[int]) -> str:
        return self._bpe.decode(ids)

    def _format_messages(self, messages: list[Message], sequence: ChatSequence) -> None:
        nfc = self._bpe.normalize  # offsets are counted in normalised text
        if messages[0].role != "system":
            self._turn(sequence, [("system\n", True), (DEFAULT_SYSTEM_PROMPT, True)], True, True)
        index = 0
        while index < len(messages):
            message = messages[index]
            if message.role != "ipython":
                parts = [(f"{message.role}\n", True), (nfc(message.content), message.masked)]
                self._turn(sequence, parts, message.eot, message.masked)
                index += 1
                continue
            parts = [("user", True)]
            while index < len(messages) and messages[index].role == "ipython":
                tool = messages[index]
                parts += [
                    ("\n<tool_response>\n", True),
                    (nfc(tool.content), tool.masked),
                    ("\n</tool_response>", tool.masked),
                ]
                index += 1
            self._turn(sequence, parts, tool.eot, tool.masked)

    def _turn(
        self, sequence: ChatSequence, parts: list[tuple[str, bool]], eot: bool, masked: bool
    ) -> None:
        """``<|im_start|>`` and the parts (one encode call); then, if ``eot``, ``<|im_end|>``."""
        sequence.add_special(self.im_start_id, masked=True)
        sequence.add_text(*parts)
        if eot:
            sequence.add_special(self.im_end_id, masked)
            sequence.add_text(("\n", masked))


def qwen2_5_tokenizer(
    path: str | Path,
    merges_file: str | Path | None = None,
    special_tokens_path: str | Path | None = None,
    max_seq_len: int | None = None,
    *,
    bos_token: str | None = None,
    eos_token: str = IM_END,
    pad_token: str = ENDOFTEXT,
    bpe_cache_size: int = DEFAULT_CACHE_SIZE,
) -> Qwen2_5Tokenizer:
    """Qwen 2.5 tokenizer from ``vocab.json`` + ``merges.txt`` (torchtune's signature).

    torchtune's ``prompt_template`` keyword is taken by the config layer, which sets the
    template on the tokenizer (``modeling.data.prompt_templates``); ``ChatMLTemplate`` is
    this tokenizer's own format and is not applied twice.

    Args:
        path: ``vocab.json`` of a Qwen 2.5 download, or its ``tokenizer.json``.
        merges_file: ``merges.txt`` of the same download (not needed with tokenizer.json).
        special_tokens_path: A ``tokenizer.json`` whose ``added_tokens`` give the special
            tokens; None for Qwen 2.5's own (or those of ``path`` if it is a tokenizer.json).
        max_seq_len: ``tokenize_messages`` truncates to this many tokens; None for no limit.
        bos_token: Spelling of a bos token, if any (Qwen has none).
        eos_token: Spelling of the eos token (``<|im_end|>``).
        pad_token: Spelling of the padding token (``<|endoftext|>``).
        bpe_cache_size: Pre-tokens whose merges are remembered.

    Raises:
        FileNotFoundError: A file is missing.
        ValueError: A file is of the wrong kind or damaged, or Qwen's tokens are missing.
    """
    special_tokens = (
        None
        if special_tokens_path is None
        else read_added_tokens(special_tokens_path, "qwen2_5_tokenizer")
    )
    return Qwen2_5Tokenizer(
        path,
        merges_file,
        special_tokens,
        max_seq_len,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=pad_token,
        bpe_cache_size=bpe_cache_size,
    )
