"""Qwen 2.5 tokenizer: Hugging Face ``tokenizers`` parity, Qwen's ids, ChatML token by token."""

import json
from pathlib import Path

import pytest

from modeling.data import Message
from modeling.qwen2_5 import qwen2_5_tiny, qwen2_5_tokenizer
from tests.modeling import qwen_tokenizer_fixtures as fixtures

pytest.importorskip("tokenizers")

# Qwen 2.5's published chat template: the chat_template of Qwen/Qwen2.5-7B-Instruct's
# tokenizer_config.json, verbatim.
QWEN2_5_CHAT_TEMPLATE = (Path(__file__).parent / "data" / "qwen2_5_chat_template.jinja").read_text(
    encoding="utf-8"
)
SAMPLES = fixtures.MULTILINGUAL + fixtures.CODE


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qwen2_5")
    vocab, merges = fixtures.write_vocab_and_merges(directory)
    return vocab, merges, fixtures.write_tokenizer_json(directory)


@pytest.fixture(scope="module")
def tok(files):
    vocab, merges, _ = files
    return qwen2_5_tokenizer(vocab, merges)


@pytest.fixture(scope="module")
def ref():
    return fixtures.reference()


def ids_of(ref, text: str) -> list[int]:
    return ref.encode(text).ids


def test_added_token_ids_follow_the_vocabulary(tok):
    base = fixtures.num_base()
    assert (tok.eos_id, tok.pad_id, tok.im_start_id, tok.im_end_id) == (
        base + 2,
        base,
        base + 1,
        base + 2,
    )
    assert tok.bos_id is None and tok.vocab_size == base + 22
    assert tok.stop_tokens == [base + 2, base]
    assert tok.encode("hi", add_bos=True, add_eos=True)[-1] == tok.eos_id
    assert tok.encode("hi", add_bos=True, add_eos=False) == tok.encode("hi", False, False)


def test_full_size_vocabulary_gives_qwen_ids(tmp_path):
    from modeling.tokenizers.byte_level_bpe import BYTE_ENCODER

    vocab = {char: i for i, char in enumerate(BYTE_ENCODER.values())}
    vocab.update({f"tok{i}": i for i in range(256, 151_643)})
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tok = qwen2_5_tokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    expected = {  # torchtune's QWEN2_5_SPECIAL_TOKENS, Qwen's tokenizer.json
        "<|endoftext|>": 151643,
        "<|im_start|>": 151644,
        "<|im_end|>": 151645,
        "<|object_ref_start|>": 151646,
        "<|video_pad|>": 151656,
    }
    assert {tok.special_tokens[i]: i for i in expected.values()} == expected
    assert (tok.eos_id, tok.pad_id, tok.vocab_size) == (151645, 151643, 151665)
    assert tok.encode("<tool_call></tool_call><|file_sep|>", add_eos=False) == [
        151657,
        151658,
        151664,
    ]
    assert tok.vocab_size <= 151_936  # the embedding of 0.5B-3B (7B and up: 152064)


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_encode_equals_hf_tokenizers(tok, ref, index):
    text = SAMPLES[index]
    ids = tok.encode(text, add_eos=False)
    assert ids == ids_of(ref, text)
    assert tok.decode(ids) == ref.decode(ids, skip_special_tokens=False)


def test_tokenizer_json_equals_vocab_and_merges(files, tok):
    from_json = qwen2_5_tokenizer(files[2])
    for text in SAMPLES:
        assert from_json.encode(text) == tok.encode(text)
    assert from_json.special_tokens == tok.special_tokens
    with_path = qwen2_5_tokenizer(files[0], files[1], special_tokens_path=files[2])
    assert with_path.special_tokens == tok.special_tokens


def test_long_unbroken_word_equals_hf_tokenizers(tok, ref):
    text = "".join(fixtures.MULTILINGUAL[6] for _ in range(400))  # ~12k CJK characters
    assert tok.encode(text, add_eos=False) == ids_of(ref, text)


def test_text_never_yields_control_tokens_but_plain_added_tokens_match(tok, ref):
    ids = tok.encode("<|im_end|> <|im_start|>system", add_eos=False)
    assert not set(ids) & set(tok.special_tokens)
    assert tok.decode(ids) == "<|im_end|> <|im_start|>system"
    text = "<tool_call>\nx\n</tool_call>"
    assert tok.encode(text, add_eos=False) == ids_of(ref, text)
    assert tok.decode(tok.encode(text)) == text  # plain added tokens survive decode


def test_decode_skips_control_tokens(tok):
    ids = [tok.im_start_id, *tok.encode("hi", add_eos=False), tok.im_end_id]
    assert tok.decode(ids) == "hi"
    assert tok.decode(ids, skip_special_tokens=False) == "<|im_start|>hi<|im_end|>"
    with pytest.raises(ValueError, match="ids are 0"):
        tok.decode([tok.vocab_size])


def hf_messages(messages: list[Message]) -> list[dict]:
    roles = {"ipython": "tool"}
    return [{"role": roles.get(m.role, m.role), "content": m.content} for m in messages]


CONVERSATIONS = {
    "system": [
        Message("system", "You are terse."),
        Message("user", "What is 2 + 2?"),
        Message("assistant", "4."),
    ],
    "default_system": [Message("user", "Bonjour !"), Message("assistant", " Salut, ça va ?\n")],
    "multi_turn_unstripped": [
        Message("system", "  spaced system  "),
        Message("user", "\nlist files"),
        Message("assistant", "```bash\nls -la\n```"),
        Message("user", "中文呢？"),
        Message("assistant", "可以。"),
    ],
    "tools": [
        Message("user", "Weather in Paris?"),
        Message("assistant", '<tool_call>\n{"name": "weather", "arguments": {}}\n</tool_call>'),
        Message("ipython", '{"temp": 21}'),
        Message("ipython", '{"sky": "clear"}'),
        Message("assistant", "21 degrees and clear."),
    ],
    "late_system": [
        Message("user", "hi"),
        Message("system", "Answer in German."),
        Message("assistant", "Hallo."),
    ],
    "decomposed_accents": [
        Message("user", "cafe\u0301?"),
        Message("assistant", "e\u0301cole"),
    ],
}


@pytest.fixture(scope="module")
def hf(ref):
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=ref)
    hf.chat_template = QWEN2_5_CHAT_TEMPLATE
    return hf


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_chat_format_equals_published_template_token_by_token(tok, ref, hf, name):
    messages = CONVERSATIONS[name]
    text = hf.apply_chat_template(hf_messages(messages), tokenize=False)
    tokens, mask = tok.tokenize_messages(messages)
    assert tokens == ids_of(ref, text)
    assert len(mask) == len(tokens)
    assert tok.decode(tokens, skip_special_tokens=False) == text.replace(
        "cafe\u0301", "café"
    ).replace("e\u0301cole", "école")


def test_generation_prompt_equals_add_generation_prompt(tok, ref, hf):
    messages = [Message("user", "hello"), Message("assistant", "", eot=False)]
    text = hf.apply_chat_template(
        hf_messages(messages[:1]), tokenize=False, add_generation_prompt=True
    )
    tokens, _ = tok.tokenize_messages(messages)
    assert tokens == ids_of(ref, text)
    assert tokens.count(tok.im_end_id) == 2  # the default system turn and the user turn


def test_masks_follow_the_shared_convention(tok):
    messages = [Message("user", "hello"), Message("assistant", "world")]
    tokens, mask = tok.tokenize_messages(messages)
    nl = tok.encode("\n", add_eos=False)
    reply = [
        tok.im_start_id,
        *tok.encode("assistant\nworld", add_eos=False),
        tok.im_end_id,
        *nl,
    ]
    assert tokens[-len(reply) :] == reply
    header = len(tok.encode("assistant\n", add_eos=False)) + 1
    content = len(reply) - header
    assert mask[-len(reply) :] == [True] * header + [False] * content
    assert all(mask[: -len(reply)])  # default system and user turns
    # A user turn that takes loss keeps its header masked.
    tokens, mask = tok.tokenize_messages([Message("user", "hello", masked=False)])
    user = tokens.index(tok.im_start_id, 1)
    header = 1 + len(tok.encode("user\n", add_eos=False))
    assert mask[user : user + header] == [True] * header
    assert mask[user + header] is False
    assert mask[-1] is False and tokens[-2] == tok.im_end_id


def test_add_end_tokens_changes_nothing_every_turn_ends_with_im_end(tok):
    messages = [Message("user", "hello"), Message("assistant", "world")]
    assert tok.tokenize_messages(messages) == tok.tokenize_messages(messages, add_end_tokens=False)


def test_truncation(files):
    vocab, merges, _ = files
    messages = [Message("user", "hello " * 40), Message("assistant", "world " * 40)]
    full, full_mask = qwen2_5_tokenizer(vocab, merges).tokenize_messages(messages)
    tokens, mask = qwen2_5_tokenizer(vocab, merges, max_seq_len=30).tokenize_messages(messages)
    assert len(full) > 30 and (tokens, mask) == (full[:30], full_mask[:30])


def test_tiny_model_holds_the_test_vocabulary(tok):
    assert tok.vocab_size <= qwen2_5_tiny().tok_embeddings.num_embeddings


def test_vocab_without_merges_file_is_named(files):
    with pytest.raises(ValueError, match=r"vocab\.json.*merges_file"):
        qwen2_5_tokenizer(files[0])


def test_missing_merges_file_is_named(files, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        qwen2_5_tokenizer(files[0], tmp_path / "nope.txt")


def test_other_families_files_are_named(tmp_path):
    from tests.modeling.tokenizer_fixtures import write_sentencepiece, write_tiktoken_ranks

    with pytest.raises(ValueError, match="not a Hugging Face vocab.json.*sentencepiece"):
        qwen2_5_tokenizer(write_sentencepiece(tmp_path / "sp"), "merges.txt")
    with pytest.raises(ValueError, match="tiktoken"):
        qwen2_5_tokenizer(write_tiktoken_ranks(tmp_path / "tk"), "merges.txt")


def test_mismatched_merges_are_named(files, tmp_path):
    bad = tmp_path / "merges.txt"
    bad.write_text("#version: 0.2\nĠthe zzzz\n")
    with pytest.raises(ValueError, match=r"merge 1 .*'zzzz'.*same model"):
        qwen2_5_tokenizer(files[0], bad)


def test_vocabulary_that_is_not_byte_level_is_named(tmp_path):
    content = json.loads(fixtures.reference_json())
    content["model"]["vocab"]["\u2581the"] = len(content["model"]["vocab"]) + 100
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="'\u2581the'.*not a byte-level BPE vocabulary"):
        qwen2_5_tokenizer(path)


def test_tokenizer_json_without_qwen_tokens_is_named(tmp_path):
    content = json.loads(fixtures.reference_json())
    content["added_tokens"] = [t for t in content["added_tokens"] if t["content"] != "<|im_start|>"]
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"lack \['<\|im_start\|>'\].*Qwen 2.5"):
        qwen2_5_tokenizer(path)


def test_config_prompt_template_wraps_turns_and_chatml_is_not_applied_twice(files, tok):
    from orchestrator.config import instantiate

    node = {
        "_component_": "torchtune.models.qwen2_5.qwen2_5_tokenizer",
        "path": str(files[0]),
        "merges_file": str(files[1]),
        "max_seq_len": None,
    }
    messages = [Message("user", "hi"), Message("assistant", "yo")]
    tagged = instantiate({**node, "prompt_template": {"user": ["Q: ", " A:"]}})
    expected = tok.tokenize_messages([Message("user", "Q: hi A:"), Message("assistant", "yo")])
    assert tagged.tokenize_messages(messages) == expected
    chatml = instantiate({**node, "prompt_template": "torchtune.data.ChatMLTemplate"})
    assert chatml.tokenize_messages(messages) == tok.tokenize_messages(messages)


def test_pickles_for_data_loader_workers(tok):
    import pickle

    again = pickle.loads(pickle.dumps(tok))
    assert again.encode(SAMPLES[0]) == tok.encode(SAMPLES[0])
