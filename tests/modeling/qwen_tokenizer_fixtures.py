"""A small Qwen 2.5-style tokenizer trained with Hugging Face ``tokenizers``, and its files.

The BPE is trained in memory once per session with Qwen's normaliser (NFC), split regex
and byte-level alphabet, then given Qwen 2.5's 22 added tokens in Qwen's order right after
the vocabulary; tests write ``vocab.json`` + ``merges.txt`` and ``tokenizer.json`` where
they ask, and compare our tokenizer with this reference.
"""

import functools
import json
import random
from pathlib import Path

from modeling.qwen2_5._tokenizer import QWEN2_5_ADDED_TOKENS, QWEN2_5_PATTERN

VOCAB_SIZE = 450  # 256 bytes + merges; with 22 added tokens it fits qwen2_5_tiny's 512

MULTILINGUAL = [
    "The quick brown fox jumps over the lazy dog. It's 12:45, isn't it? They'll see.",
    "DON'T SHOUT; we'VE heard   you\t\tloud and clear!!!",
    "Größe, Äpfel und Übermut: schöne Grüße aus Köln.",
    "Le café est très bon à Paris, n'est-ce pas ? Où est l'hôtel ?",
    "El niño comió paella y bebió café con leche en España.",
    "日本語のテキストです。東京は大きな都市です。",
    "我们今天学习中文，明天去北京看长城。人工智能正在改变世界。",
    "한국어 문장입니다. 서울은 아름답습니다.",
    "Привет, мир! Как дела? Всё хорошо.",
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "Emoji: 😀🎉👍🏽 and flags 🇫🇷🇯🇵, math ∑∫√π ≈ 3.14159, 1,000,000 and 2025-01-31.",
    "Decomposed accents: e\u0301cole, cafe\u0301, n\u0303, A\u030a (NFC composes them).",
    "Windows line endings\r\nand\r\n\r\nblank lines\n\n\n   trailing spaces   \n",
]
CODE = [
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n"
    "    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    'class Greeter:\n    """Say hello."""\n\n    def __init__(self, name):\n'
    "        self.name = name  # keep it\n",
    '{"model": "qwen2.5", "layers": [1, 2, 3], "nested": {"ok": true, "value": null}}',
    '#include <stdio.h>\nint main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
    "for (let i = 0; i < arr.length; i++) { total += arr[i] ** 2; }",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "    indented\n        deeper\n\t\ttabs\n",
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    "<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n<|fim_middle|>    return a + b",
]
WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have "
    "from or one had by word but not what all were we when your can said there use an each "
    "which she do how their if will up other about out many then them these so some her "
    "would make like him into time has look two more write go see number no way could "
    "people my than first water been call who oil its now find long down day did get come "
    "made may part model token train loss reply user system assistant hello world python"
)


@functools.cache
def corpus() -> tuple[str, ...]:
    """Training text: random English lines plus every multilingual and code sample."""
    rng = random.Random(0)
    words = WORDS.split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(1500)]
    return tuple(lines + (MULTILINGUAL + CODE) * 20)


@functools.cache
def reference_json() -> str:
    """The trained tokenizer, with Qwen's added tokens, as a ``tokenizer.json`` string."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_5_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer)
    for content, special in QWEN2_5_ADDED_TOKENS:  # one at a time: ids in Qwen's order
        token = AddedToken(content, special=special, normalized=False)
        added = tokenizer.add_special_tokens([token]) if special else tokenizer.add_tokens([token])
        assert added == 1
    return tokenizer.to_str()


def reference():
    """A fresh ``tokenizers.Tokenizer`` of :func:`reference_json`."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(reference_json())


def num_base() -> int:
    """Tokens in the trained vocabulary (the first added token's id)."""
    return len(json.loads(reference_json())["model"]["vocab"])


def write_vocab_and_merges(directory: Path) -> tuple[Path, Path]:
    """``vocab.json`` and ``merges.txt`` as Qwen ships them; return their paths."""
    model = json.loads(reference_json())["model"]
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = directory / "vocab.json", directory / "merges.txt"
    vocab.write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
    lines = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    merges.write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return vocab, merges


def write_tokenizer_json(directory: Path) -> Path:
    """``tokenizer.json`` with the added tokens; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokenizer.json"
    path.write_text(reference_json(), encoding="utf-8")
    return path
