"""Llama 3 tokenizer: special ids, Meta's chat format token by token, long inputs."""

import base64
import random

import pytest
import tiktoken

from modeling.data import Message
from modeling.llama3 import llama3_tokenizer
from modeling.llama3._tokenizer import LLAMA3_PATTERN
from modeling.tokenizers import split_long_runs
from tests.modeling.tokenizer_fixtures import NUM_RANKS, rank_file_lines, write_tiktoken_ranks

NAMED = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]
BOS, EOS, PAD, SH, EH, EOM, EOT = (
    NUM_RANKS + NAMED.index(t)
    for t in (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|finetune_right_pad_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
    )
)


@pytest.fixture
def tok(tmp_path):
    return llama3_tokenizer(write_tiktoken_ranks(tmp_path))


@pytest.fixture(scope="module")
def raw() -> tiktoken.Encoding:
    """tiktoken built straight from the rank lines: the reference for expected ids."""
    ranks = {}
    for line in rank_file_lines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(
        "reference", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )


def test_special_ids_follow_the_ranks(tok):
    assert tok.num_base == NUM_RANKS
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (BOS, EOS, PAD)
    assert tok.stop_tokens == [EOS, EOT, EOM]
    assert tok.vocab_size == NUM_RANKS + 256
    assert tok.decode([NUM_RANKS + 11, NUM_RANKS + 255], skip_special_tokens=False) == (
        "<|reserved_special_token_2|><|reserved_special_token_246|>"
    )


def test_real_size_rank_file_gives_meta_ids(tmp_path):
    # 256 bytes + every 2-byte token + 3-byte tokens up to Meta's 128000 regular tokens.
    tokens = [bytes([b]) for b in range(256)] + [
        bytes([a, b]) for a in range(256) for b in range(256)
    ]
    tokens += [bytes([1, a, b]) for a in range(256) for b in range(256)][: 128000 - len(tokens)]
    path = tmp_path / "tokenizer.model"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for r, t in enumerate(tokens)))
    tok = llama3_tokenizer(path)
    expected = {
        "<|begin_of_text|>": 128000,
        "<|end_of_text|>": 128001,
        "<|reserved_special_token_0|>": 128002,
        "<|reserved_special_token_1|>": 128003,
        "<|finetune_right_pad_id|>": 128004,
        "<|step_id|>": 128005,
        "<|start_header_id|>": 128006,
        "<|end_header_id|>": 128007,
        "<|eom_id|>": 128008,
        "<|eot_id|>": 128009,
        "<|python_tag|>": 128010,
        "<|reserved_special_token_2|>": 128011,
        "<|reserved_special_token_246|>": 128255,
    }
    assert {tok.special_tokens[i]: i for i in expected.values()} == expected
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size) == (128000, 128001, 128004, 128256)
    assert tok.stop_tokens == [128001, 128009, 128008]


def test_encode_matches_tiktoken_and_round_trips(tok, raw):
    text = "hello world, the user is system\n\n  Two 123456 ünïcode 😀 it's"
    ids = tok.encode(text)
    assert ids == [BOS, *raw.encode_ordinary(text), EOS]
    assert tok.encode(text, add_bos=False, add_eos=False) == raw.encode_ordinary(text)
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=False) == f"<|begin_of_text|>{text}<|end_of_text|>"


def test_special_token_text_is_not_a_control_token(tok, raw):
    ids = tok.encode("<|eot_id|>", add_bos=False, add_eos=False)
    assert ids == raw.encode_ordinary("<|eot_id|>")
    assert EOT not in ids


def header(raw, role):
    return [
        (SH, True),
        *[(t, True) for t in raw.encode_ordinary(role)],
        (EH, True),
        *[(t, True) for t in raw.encode_ordinary("\n\n")],
    ]


def test_chat_format_token_by_token(tok, raw):
    messages = [
        Message("system", "You are helpful."),
        Message("user", "  What is two plus two?\n"),
        Message("assistant", "Four. "),
        Message("ipython", "4"),
    ]
    expected = [(BOS, True)]
    for role, content, masked in [
        ("system", "You are helpful.", True),
        ("user", "What is two plus two?", True),
        ("assistant", "Four.", False),
        ("ipython", "4", True),
    ]:
        expected += header(raw, role)
        expected += [(t, masked) for t in raw.encode_ordinary(content)]
        expected += [(EOT, masked)]
    expected += [(EOS, True)]
    tokens, mask = tok.tokenize_messages(messages)
    assert list(zip(tokens, mask, strict=True)) == expected
    assert tok.decode(tokens, skip_special_tokens=False) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful."
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is two plus two?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nFour.<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n4<|eot_id|><|end_of_text|>"
    )


def test_dicts_equal_messages_and_masked_override(tok):
    as_dicts = [
        {"role": "user", "content": "hello", "masked": False},
        {"role": "assistant", "content": "world"},
    ]
    as_objects = [Message("user", "hello", masked=False), Message("assistant", "world")]
    assert tok.tokenize_messages(as_dicts) == tok.tokenize_messages(as_objects)
    tokens, mask = tok.tokenize_messages(as_dicts)
    # The user header stays masked even when the user's content takes loss.
    assert mask[:4] == [True] * 4
    user_content = tok.encode("hello", add_bos=False, add_eos=False)
    start = tokens.index(EH) + 1 + len(tok.encode("\n\n", add_bos=False, add_eos=False))
    assert tokens[start : start + len(user_content)] == user_content
    assert mask[start : start + len(user_content)] == [False] * len(user_content)


def test_open_assistant_turn_is_a_generation_prompt(tok, raw):
    messages = [Message("user", "hello"), Message("assistant", "", eot=False)]
    tokens, mask = tok.tokenize_messages(messages)
    expected_tail = [t for t, _ in header(raw, "assistant")]
    assert tokens[-len(expected_tail) :] == expected_tail
    assert EOS not in tokens and tokens.count(EOT) == 1


def test_add_end_tokens_false_leaves_out_eos(tok):
    messages = [Message("user", "hello"), Message("assistant", "world")]
    with_end, _ = tok.tokenize_messages(messages)
    without, mask = tok.tokenize_messages(messages, add_end_tokens=False)
    assert with_end == [*without, EOS]
    assert without[-1] == EOT and len(mask) == len(without)


def test_truncation_keeps_eos(tmp_path):
    path = write_tiktoken_ranks(tmp_path)
    messages = [Message("user", "hello " * 20), Message("assistant", "world " * 20)]
    full, full_mask = llama3_tokenizer(path).tokenize_messages(messages)
    tokens, mask = llama3_tokenizer(path, max_seq_len=30).tokenize_messages(messages)
    assert len(full) > 30 and len(tokens) == 30
    assert tokens[:-1] == full[:29] and mask[:-1] == full_mask[:29]
    assert tokens[-1] == EOS and mask[-1] is True
    prompt, _ = llama3_tokenizer(path, max_seq_len=30).tokenize_messages(
        messages, add_end_tokens=False
    )
    assert prompt == full[:30]
    short = llama3_tokenizer(path, max_seq_len=1000).tokenize_messages(messages)
    assert short == (full, full_mask)


def meta_split(s: str, max_len: int) -> list[str]:
    """Meta's ``_split_whitespaces_or_nonwhitespaces``, character by character."""
    out, run_len, start = [], 0, 0
    is_space = s[0].isspace() if s else False
    for i, ch in enumerate(s):
        if is_space ^ ch.isspace():
            run_len, is_space = 1, ch.isspace()
        else:
            run_len += 1
            if run_len > max_len:
                out.append(s[start:i])
                start, run_len = i, 1
    out.append(s[start:])
    return out


def test_split_long_runs_cuts_where_meta_does():
    rng = random.Random(0)
    for _ in range(300):
        s = "".join(
            rng.choice(" \n\tab\u3000é") * rng.randint(1, 12) for _ in range(rng.randint(0, 8))
        )
        for max_len in (1, 3, 5):
            assert list(split_long_runs(s, max_len)) == meta_split(s, max_len), (s, max_len)
    assert list(split_long_runs("a" * 60_000)) == ["a" * 25_000, "a" * 25_000, "a" * 10_000]


def test_long_inputs_round_trip(tok, raw):
    spaces = " " * 1_000_000
    assert tok.decode(tok.encode(spaces)) == spaces
    rng = random.Random(0)
    words = ["hello", "world", "the", "user", "ünï", "😀", "\n", "  ", "42", "system"]
    text = " ".join(rng.choice(words) for _ in range(400_000))
    text += "x" * 100_000 + "\n" * 60_000 + "end"
    assert len(text.encode()) > 2_000_000
    ids = tok.encode(text, add_bos=False, add_eos=False)
    assert tok.decode(ids) == text
    # Cutting only at 400k-character chunk borders and inside long runs, as Meta does.
    head = text[:300_000]
    assert tok.encode(head, add_bos=False, add_eos=False) == raw.encode_ordinary(head)
