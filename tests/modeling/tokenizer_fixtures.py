"""Tiny tokenizer files for tests: sentencepiece models trained in memory, tiktoken ranks.

Models are trained once per session (cached) and written where a test asks, so every test
reads a real file through the production loaders.
"""

import base64
import functools
import io
import random
from pathlib import Path

import sentencepiece

WORDS = (
    "the quick brown fox jumps over a lazy dog hello world you are helpful assistant answer "
    "question system user model python code data token train loss reply what is two plus "
    "three four five tell me joke"
)
EXTRA_LINES = [
    "[INST] <<SYS>>\nYou are helpful\n<</SYS>>\n\nWhat is two plus two? [/INST] Four.",
    "héllo wörld ünïcode 日本語 emoji 😀 naïve café",
    "def main():\n    return 42\n\n\nclass A:\n    pass\n",
]


@functools.cache
def corpus() -> tuple[str, ...]:
    rng = random.Random(0)
    words = WORDS.split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 15))) for _ in range(3000)]
    return tuple(lines + EXTRA_LINES * 30)


@functools.cache
def sentencepiece_model(gemma: bool = False) -> bytes:
    """A byte-fallback BPE sentencepiece model like Llama 2's (or Gemma's, with turn pieces).

    Llama-like: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, no pad. Gemma-like: ``<pad>`` 0,
    ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3, then ``<start_of_turn>``/``<end_of_turn>``, and
    no dummy word-start prefix, as in Gemma's real model.
    """
    ids = (
        dict(
            pad_id=0,
            eos_id=1,
            bos_id=2,
            unk_id=3,
            pad_piece="<pad>",
            eos_piece="<eos>",
            bos_piece="<bos>",
            user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
            add_dummy_prefix=False,
        )
        if gemma
        else dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    )
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        model_type="bpe",
        vocab_size=420,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        minloglevel=2,
        **ids,
    )
    return model.getvalue()


def write_sentencepiece(directory: Path, gemma: bool = False) -> Path:
    path = directory / ("gemma" if gemma else "llama2") / "tokenizer.model"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sentencepiece_model(gemma))
    return path


# Merges on top of the 256 single bytes; each joins two tokens that exist before it.
MERGES = [
    ("h", "e"),
    ("l", "l"),
    ("he", "ll"),
    ("hell", "o"),
    (" ", "w"),
    ("o", "r"),
    (" w", "or"),
    (" wor", "l"),
    (" worl", "d"),
    ("t", "h"),
    (" ", "th"),
    (" th", "e"),
    (" ", " "),
    ("  ", "  "),
    ("\n", "\n"),
    ("a", "s"),
    ("i", "s"),
    (" ", "is"),
    ("u", "s"),
    ("us", "e"),
    ("use", "r"),
    ("a", "n"),
    ("an", "s"),
    ("w", "e"),
    ("we", "r"),
    ("ans", "wer"),
    ("s", "y"),
    ("sy", "s"),
    ("t", "e"),
    ("te", "m"),
    ("sys", "tem"),
    (" ", "a"),
    ("<", "|"),
    ("|", ">"),
    ("i", "p"),
    ("y", "t"),
    ("h", "o"),
    ("ho", "n"),
    ("ip", "yt"),
    ("ipyt", "hon"),
    ("T", "w"),
    ("Tw", "o"),
]


def rank_file_lines() -> list[str]:
    tokens = [bytes([b]) for b in range(256)]
    for left, right in MERGES:
        assert left.encode() in tokens and right.encode() in tokens, (left, right)
        tokens.append((left + right).encode())
    return [f"{base64.b64encode(token).decode()} {rank}" for rank, token in enumerate(tokens)]


def write_tiktoken_ranks(directory: Path) -> Path:
    path = directory / "llama3" / "tokenizer.model"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rank_file_lines()) + "\n")
    return path


NUM_RANKS = 256 + len(MERGES)


def processor(gemma: bool = False) -> sentencepiece.SentencePieceProcessor:
    """The raw sentencepiece model, to derive expected ids independently of our code."""
    return sentencepiece.SentencePieceProcessor(model_proto=sentencepiece_model(gemma))
