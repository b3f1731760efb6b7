"""Tokenizers: shared BPE readers and chat-format machinery, and the five family builders.

The builders live in their families (``modeling.llama3.llama3_tokenizer``, ...) and are
re-exported here lazily: the family modules import this package's machinery, so importing
them eagerly here would be circular.
"""

import importlib
from typing import Any

from modeling.tokenizers.byte_level_bpe import ByteLevelBPE
from modeling.tokenizers.chat import ChatSequence, strip_parts, truncate
from modeling.tokenizers.chat_tokenizer import ChatTokenizer
from modeling.tokenizers.sentencepiece_bpe import SentencePieceTokenizer, load_sentencepiece
from modeling.tokenizers.tiktoken_bpe import TikTokenBPE, split_long_runs

_FAMILY_BUILDERS = {
    "llama3_tokenizer": "modeling.llama3",
    "llama2_tokenizer": "modeling.llama2",
    "mistral_tokenizer": "modeling.mistral",
    "phi3_mini_tokenizer": "modeling.phi3",
    "gemma_tokenizer": "modeling.gemma",
    "qwen2_5_tokenizer": "modeling.qwen2_5",
}

__all__ = [
    "ByteLevelBPE",
    "ChatSequence",
    "ChatTokenizer",
    "SentencePieceTokenizer",
    "TikTokenBPE",
    "gemma_tokenizer",
    "llama2_tokenizer",
    "llama3_tokenizer",
    "load_sentencepiece",
    "mistral_tokenizer",
    "phi3_mini_tokenizer",
    "qwen2_5_tokenizer",
    "split_long_runs",
    "strip_parts",
    "truncate",
]


def __getattr__(name: str) -> Any:
    if name in _FAMILY_BUILDERS:
        return getattr(importlib.import_module(_FAMILY_BUILDERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
