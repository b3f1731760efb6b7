"""Shared tokenizer machinery: mask assignment, stripping, truncation, exports."""

import random
import subprocess
import sys

import modeling.models
import modeling.tokenizers
from modeling.tokenizers import ChatSequence, strip_parts, truncate


def test_strip_parts_is_strip_of_the_concatenation():
    rng = random.Random(0)
    for _ in range(500):
        parts = [
            ("".join(rng.choice(" \nab") for _ in range(rng.randint(0, 4))), bool(i % 2))
            for i in range(rng.randint(1, 5))
        ]
        stripped = strip_parts(parts)
        assert "".join(t for t, _ in stripped) == "".join(t for t, _ in parts).strip()
        assert [m for _, m in stripped] == [m for _, m in parts]


def test_tokens_take_the_mask_of_the_part_holding_their_last_byte():
    # A toy encoder: one token per word, the word-start space included (like "▁word").
    def encode_with_offsets(text):
        ends, position = [], 0
        for index, word in enumerate(text.split(" ")):
            position += len(word.encode()) + (index > 0)
            ends.append((index, position))
        return ends

    sequence = ChatSequence(
        lambda text: [t for t, _ in encode_with_offsets(text)], encode_with_offsets
    )
    sequence.add_special(99, masked=True)
    sequence.add_text(("[INST] ", True), ("héllo world", False), (" [/INST]", True))
    assert sequence.tokens == [99, 0, 1, 2, 3]
    assert sequence.mask == [True, True, False, False, True]
    sequence.add_text(("", False), ("same mask", True))
    assert sequence.mask[-2:] == [True, True]


def test_truncate():
    assert truncate([1, 2, 3, 9], [True, False, False, True], 3, eos_id=9) == (
        [1, 2, 9],
        [True, False, True],
    )
    assert truncate([1, 2, 3, 4], [True] * 4, 3, eos_id=9) == ([1, 2, 3], [True] * 3)
    assert truncate([1, 9, 3, 9], [True, False, True, True], 2, eos_id=9) == ([1, 9], [True, False])
    assert truncate([1, 9], [True, True], 5, eos_id=9) == ([1, 9], [True, True])


def test_builders_exported_everywhere():
    for family, name in [
        ("llama3", "llama3_tokenizer"),
        ("llama2", "llama2_tokenizer"),
        ("mistral", "mistral_tokenizer"),
        ("phi3", "phi3_mini_tokenizer"),
        ("gemma", "gemma_tokenizer"),
    ]:
        module = getattr(modeling.models, family)
        assert name in module.__all__ and name in modeling.tokenizers.__all__
        assert getattr(modeling.tokenizers, name) is getattr(module, name)
        assert name in dir(modeling.tokenizers)


def test_importing_tokenizers_does_not_import_ray():
    code = (
        "import sys, modeling.tokenizers, modeling.llama3, modeling.gemma;"
        "from modeling.tokenizers import phi3_mini_tokenizer;"
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
