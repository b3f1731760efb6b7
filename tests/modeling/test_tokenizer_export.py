"""A run's merged/ and adapter/ carry tokenizer files transformers loads, giving our ids.

Each case writes real outputs through a checkpointer (a Hugging Face base with or without
tokenizer files, or a Meta base) with the files ``hf_tokenizer_files`` makes, then loads
them with ``AutoTokenizer`` and compares plain-text ids on a varied corpus and chat-template
ids with ``tokenize_messages``. Qwen 2.5 is checked for each way its tokenizer is read
(vocab.json + merges.txt, tokenizer.json, special_tokens_path, a configured bos).
"""

import json
from pathlib import Path

import pytest

from modeling.checkpointing import FullModelHFCheckpointer, FullModelMetaCheckpointer
from modeling.data import Message
from modeling.gemma import gemma_tokenizer
from modeling.llama2 import llama2_tokenizer
from modeling.llama3 import llama3_tokenizer
from modeling.mistral import mistral_tokenizer
from modeling.qwen2_5 import lora_qwen2_5, qwen2_5_tokenizer
from modeling.tokenizers.hf_export import hf_tokenizer_files, tiktoken_merges
from tests.modeling import qwen_tokenizer_fixtures as qwen_fixtures
from tests.modeling.checkpoint_fixtures import build, model_type, saved_hf
from tests.modeling.test_checkpointing_meta import write_meta
from tests.modeling.test_parity_qwen2_5 import SIZES as QWEN_SIZES
from tests.modeling.test_parity_qwen2_5 import tiny_hf as tiny_qwen_hf
from tests.modeling.tokenizer_fixtures import (
    corpus,
    write_sentencepiece,
    write_tiktoken_ranks,
)

transformers = pytest.importorskip("transformers")

LORA = dict(lora_attn_modules=["q_proj", "v_proj"], lora_rank=4, lora_alpha=8.0)
VARIED = [
    "hello world, the answer is 42!",
    "What is two plus three? Four.\n\nThe user asked: 'is it?'",
    "def main():\n    return [x ** 2 for x in range(10)]\n",
    "héllo wörld ünïcode 日本語 emoji 😀 naïve café",
    "tabs\tand  double  spaces   and trailing space ",
    "I'm sure it's fine; we'll see, they've gone, you'd know.",
    "1234567 + 89 = 1234656",
    "UPPER lower MiXeD",
]
CONVERSATION = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "What is two plus three?"},
    {"role": "assistant", "content": "Five."},
    {"role": "user", "content": "hello world"},
    {"role": "assistant", "content": "the answer"},
]
TOKENIZERS = {
    "llama3": lambda d: llama3_tokenizer(write_tiktoken_ranks(d)),
    "llama2": lambda d: llama2_tokenizer(write_sentencepiece(d)),
    "mistral": lambda d: mistral_tokenizer(write_sentencepiece(d)),
    "gemma": lambda d: gemma_tokenizer(write_sentencepiece(d, gemma=True)),
}


def write_outputs(family, base_kind, tokenizer, tmp_path):
    """A LoRA run's outputs over a tiny base of ``base_kind`` with the exported files."""
    base = tmp_path / "base"
    if base_kind == "meta":
        state = build(family).state_dict()
        checkpointer = FullModelMetaCheckpointer(write_meta(family, state, base), model_type=family)
    else:
        saved_hf(family, base)
        if base_kind == "hf_bare":
            (base / "tokenizer.model").unlink()
            (base / "tokenizer_config.json").unlink()
        checkpointer = FullModelHFCheckpointer(base, model_type=model_type(family))
    model = build(family, LORA)
    model.load_state_dict(checkpointer.load_checkpoint(), strict=False)
    written = checkpointer.write_outputs(
        model,
        tmp_path / "out",
        rank=0,
        lora_config=LORA,
        extra_files=hf_tokenizer_files(tokenizer),
    )
    return written["merged"], written["adapter"]


def ids(encoded):
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def assert_same_tokenizer(directory, ours, family):
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    lines = [*VARIED, *corpus()[::97]]
    if family in ("llama3", "qwen2_5"):  # sentencepiece: no "▁" before a leading space
        lines += ["  leading spaces", "\n\nleading newlines", ""]
    for line in lines:
        expected = ours.encode(line, add_eos=False)
        assert ids(hf(line)) == expected, line
        without_bos = expected if ours.bos_id is None else expected[1:]
        assert ids(hf(line, add_special_tokens=False)) == without_bos, line
    messages = CONVERSATION
    templated = hf.apply_chat_template(messages, tokenize=True)
    assert ids(templated) == ours.tokenize_messages(messages, add_end_tokens=False)[0]
    prompt = messages[:-1]
    open_families = ("llama3", "gemma", "qwen2_5")
    open_turn = [Message("assistant", "", eot=False)] if family in open_families else []
    generation = hf.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True)
    assert ids(generation) == ours.tokenize_messages([*prompt, *open_turn])[0]
    settings = json.loads((directory / "generation_config.json").read_text())
    assert settings["eos_token_id"] == list(ours.stop_tokens)
    assert settings["bos_token_id"] == ours.bos_id
    assert hf.eos_token_id == ours.eos_id and hf.bos_token_id == ours.bos_id
    # special_tokens_map.json names the tokens by the spellings of our ids
    named = json.loads((directory / "special_tokens_map.json").read_text())
    assert hf.convert_tokens_to_ids(named["eos_token"]) == ours.eos_id
    assert hf.convert_tokens_to_ids(named["pad_token"]) == ours.pad_id


@pytest.mark.parametrize(
    ("family", "base_kind"),
    [
        ("llama3", "hf"),
        ("llama3", "hf_bare"),
        ("llama3", "meta"),
        ("llama2", "hf_bare"),
        ("llama2", "meta"),
        ("mistral", "hf"),
        ("gemma", "hf_bare"),
    ],
)
def test_merged_and_adapter_tokenizers_give_our_ids(family, base_kind, tmp_path):
    ours = TOKENIZERS[family](tmp_path / "tok")
    merged, adapter = write_outputs(family, base_kind, ours, tmp_path)
    for directory in (merged, adapter):
        assert_same_tokenizer(directory, ours, family)
    if base_kind == "hf":  # the stub tokenizer files of the base were replaced
        assert json.loads((merged / "tokenizer_config.json").read_text())["chat_template"]


def test_peft_loads_the_adapter_with_its_tokenizer(tmp_path):
    peft = pytest.importorskip("peft")
    ours = TOKENIZERS["llama3"](tmp_path / "tok")
    _, adapter = write_outputs("llama3", "hf_bare", ours, tmp_path)
    model = peft.AutoPeftModelForCausalLM.from_pretrained(adapter)
    assert isinstance(model, peft.PeftModel)
    tokenizer = transformers.AutoTokenizer.from_pretrained(adapter)
    assert ids(tokenizer("hello world")) == ours.encode("hello world", add_eos=False)


def test_tiktoken_merges_rebuild_every_token(tmp_path):
    ours = TOKENIZERS["llama3"](tmp_path)
    ranks = ours._bpe._encoding._mergeable_ranks
    merges = tiktoken_merges(ranks)
    assert len(merges) == len(ranks) - 256
    assert sorted(a + b for a, b in merges) == sorted(t for t in ranks if len(t) > 1)
    assert [ranks[a + b] for a, b in merges] == sorted(ranks[a + b] for a, b in merges)
    # b" the" is unreachable with the ranks below its own ("he" forms before "th"), as in
    # the test rank file: it is split where both halves rank lowest.
    ranks = {b" ": 0, b"t": 1, b"h": 2, b"e": 3, b"he": 4, b"th": 5, b" th": 6, b" the": 7}
    assert tiktoken_merges(ranks) == [(b"h", b"e"), (b"t", b"h"), (b" ", b"th"), (b" th", b"e")]


QWEN_TOKENIZERS = {
    "vocab_merges": lambda d: qwen2_5_tokenizer(*qwen_fixtures.write_vocab_and_merges(d)),
    "tokenizer_json": lambda d: qwen2_5_tokenizer(qwen_fixtures.write_tokenizer_json(d)),
    "special_tokens_path": lambda d: qwen2_5_tokenizer(
        *qwen_fixtures.write_vocab_and_merges(d),
        special_tokens_path=qwen_fixtures.write_tokenizer_json(d / "json"),
    ),
    "bos": lambda d: qwen2_5_tokenizer(
        *qwen_fixtures.write_vocab_and_merges(d), bos_token="<|endoftext|>"
    ),
}
QWEN_TEMPLATE = Path(__file__).parent / "data" / "qwen2_5_chat_template.jinja"
# No system message (Qwen's default one), NFC-composable and multilingual content, code,
# two tool results in one user turn, the fill-in-the-middle and tool-call markers as text.
QWEN_CONVERSATIONS = [
    [
        {"role": "user", "content": "Größe? cafe\u0301 日本語 😀\n\n  spaced  "},
        {"role": "assistant", "content": "def f(x):\n    return x ** 2\n"},
        {"role": "user", "content": "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"},
        {"role": "assistant", "content": '<tool_call>\n{"name": "get_weather"}\n</tool_call>'},
    ],
    [
        {"role": "system", "content": "Answer with the tool's result."},
        {"role": "user", "content": "Weather in Paris and Köln?"},
        {"role": "assistant", "content": "Calling both."},
        {"role": "tool", "content": '{"city": "Paris", "temp": 21}'},
        {"role": "tool", "content": '{"city": "Köln", "temp": 18}'},
        {"role": "assistant", "content": "21 °C in Paris, 18 °C in Köln."},
    ],
]


def write_qwen_outputs(base_kind, tokenizer, tokenizer_dir, tmp_path):
    """A LoRA run's outputs over a tiny Qwen 2.5 base, with or without its vocab files."""
    base = tmp_path / "base"
    tiny_qwen_hf(tied=False).save_pretrained(base)
    if base_kind == "hf":  # a download's vocab files and a stub config: replaced or kept
        for name in ("vocab.json", "merges.txt"):
            (base / name).write_bytes((tokenizer_dir / name).read_bytes())
        (base / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128}))
    checkpointer = FullModelHFCheckpointer(base, model_type="qwen2")
    model = lora_qwen2_5(**QWEN_SIZES, **LORA)
    model.load_state_dict(checkpointer.load_checkpoint(), strict=False)
    written = checkpointer.write_outputs(
        model,
        tmp_path / "out",
        rank=0,
        lora_config=LORA,
        extra_files=hf_tokenizer_files(tokenizer),
    )
    return written["merged"], written["adapter"]


def ours_messages(messages):
    """The conversation in our roles (a ``tool`` result is an ``ipython`` message)."""
    return [
        {**message, "role": "ipython" if message["role"] == "tool" else message["role"]}
        for message in messages
    ]


@pytest.mark.parametrize(
    ("tokenizer_kind", "base_kind"),
    [
        ("vocab_merges", "hf"),
        ("vocab_merges", "hf_bare"),
        ("tokenizer_json", "hf_bare"),
        ("special_tokens_path", "hf"),
        ("bos", "hf_bare"),
    ],
)
def test_qwen2_5_merged_and_adapter_tokenizers_give_our_ids(tokenizer_kind, base_kind, tmp_path):
    tokenizer_dir = tmp_path / "tok"
    ours = QWEN_TOKENIZERS[tokenizer_kind](tokenizer_dir)
    merged, adapter = write_qwen_outputs(base_kind, ours, tokenizer_dir, tmp_path)
    for directory in (merged, adapter):
        assert_same_tokenizer(directory, ours, "qwen2_5")
        hf = transformers.AutoTokenizer.from_pretrained(directory)
        for line in [*qwen_fixtures.MULTILINGUAL, *qwen_fixtures.CODE]:
            expected = ours.encode(line, add_eos=False)
            assert ids(hf(line)) == expected, line
            assert hf.decode(expected, skip_special_tokens=True) == ours.decode(expected)
        for messages in QWEN_CONVERSATIONS:
            templated = hf.apply_chat_template(messages, tokenize=True)
            expected = ours.tokenize_messages(ours_messages(messages), add_end_tokens=False)[0]
            assert ids(templated) == expected
        config = json.loads((directory / "tokenizer_config.json").read_text())
        assert config["chat_template"] == QWEN_TEMPLATE.read_text()
        settings = json.loads((directory / "generation_config.json").read_text())
        assert settings["eos_token_id"] == [ours.im_end_id, ours.endoftext_id]
        assert hf.eos_token == "<|im_end|>" and hf.pad_token_id == ours.endoftext_id
        plain = {t: i for t, i in hf.get_added_vocab().items() if t not in hf.all_special_tokens}
        assert plain == {t.content: t.id for t in ours._bpe.added_tokens.values() if not t.special}
