"""Llama 2 and Mistral: Meta's and Mistral's [INST] formats token by token, with masks."""

import pytest

from modeling.data import Message
from modeling.llama2 import llama2_tokenizer
from modeling.mistral import mistral_tokenizer
from tests.modeling.tokenizer_fixtures import processor, write_sentencepiece

BOS, EOS, UNK = 1, 2, 0

CONVERSATION = [
    Message("system", "You are helpful"),
    Message("user", "What is two plus two? "),
    Message("assistant", " Four."),
    Message("user", "And three plus three?"),
    Message("assistant", "Five, no: six."),
]


@pytest.fixture(scope="module")
def sp():
    return processor()


def split_at(sp, prompt: str, reply: str) -> list[tuple[int, bool]]:
    """sp ids of ``prompt + reply`` encoded as one string: prompt tokens masked, reply not."""
    whole, head = sp.encode(prompt + reply), sp.encode(prompt)
    assert whole[: len(head)] == head  # the split point is a token boundary
    return [(t, True) for t in head] + [(t, False) for t in whole[len(head) :]]


@pytest.mark.parametrize("build", [llama2_tokenizer, mistral_tokenizer])
def test_ids_from_the_model(tmp_path, build):
    tok = build(write_sentencepiece(tmp_path))
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (BOS, EOS, UNK)
    assert tok.stop_tokens == [EOS]
    assert tok.vocab_size == 420
    text = "hello world, héllo 😀"
    ids = tok.encode(text)
    assert ids == [BOS, *processor().encode(text), EOS]
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=False) == f"<s>{text}</s>"


def test_llama2_chat_format(tmp_path, sp):
    tok = llama2_tokenizer(write_sentencepiece(tmp_path))
    expected = [(BOS, True)]
    expected += split_at(
        sp,
        "[INST] <<SYS>>\nYou are helpful\n<</SYS>>\n\nWhat is two plus two? [/INST]",
        " Four. ",
    )
    expected += [(EOS, False), (BOS, True)]
    expected += split_at(sp, "[INST] And three plus three? [/INST]", " Five, no: six. ")
    expected += [(EOS, False)]
    tokens, mask = tok.tokenize_messages(CONVERSATION)
    assert list(zip(tokens, mask, strict=True)) == expected
    assert tok.decode(tokens, skip_special_tokens=False) == (
        "<s>[INST] <<SYS>>\nYou are helpful\n<</SYS>>\n\nWhat is two plus two? [/INST] Four. </s>"
        "<s>[INST] And three plus three? [/INST] Five, no: six. </s>"
    )


def test_llama2_prompt_and_open_reply(tmp_path, sp):
    tok = llama2_tokenizer(write_sentencepiece(tmp_path))
    tokens, mask = tok.tokenize_messages([Message("user", "hello")])
    assert tokens == [BOS, *sp.encode("[INST] hello [/INST]")] and all(mask)
    tokens, mask = tok.tokenize_messages(
        [Message("user", "hello"), Message("assistant", "The", eot=False)]
    )
    assert list(zip(tokens, mask, strict=True)) == [
        (BOS, True),
        *split_at(sp, "[INST] hello [/INST]", " The"),
    ]
    # The trailing space of Meta's format belongs to closed replies only.
    tokens, _ = tok.tokenize_messages(
        [Message("user", "hello"), Message("assistant", "", eot=False)]
    )
    assert tokens == [BOS, *sp.encode("[INST] hello [/INST]")]


def test_mistral_chat_format(tmp_path, sp):
    tok = mistral_tokenizer(write_sentencepiece(tmp_path))
    expected = [(BOS, True)]
    expected += [
        (t, True) for t in sp.encode("[INST] You are helpful\n\nWhat is two plus two?  [/INST]")
    ]
    expected += [(t, False) for t in sp.encode(" Four.")] + [(EOS, False)]
    expected += [(t, True) for t in sp.encode("[INST] And three plus three? [/INST]")]
    expected += [(t, False) for t in sp.encode("Five, no: six.")] + [(EOS, False)]
    tokens, mask = tok.tokenize_messages(CONVERSATION)
    assert list(zip(tokens, mask, strict=True)) == expected
    plain = [Message("user", "hi"), Message("assistant", "Four.")]
    assert tok.decode(tok.tokenize_messages(plain)[0], skip_special_tokens=False) == (
        "<s>[INST] hi [/INST] Four.</s>"
    )


def test_unmasked_user_turn_keeps_scaffolding_masked(tmp_path, sp):
    tok = mistral_tokenizer(write_sentencepiece(tmp_path))
    tokens, mask = tok.tokenize_messages([Message("user", "hello world", masked=False)])
    pieces = [sp.id_to_piece(t) for t in tokens]
    masked_text = "".join(p for p, m in zip(pieces, mask, strict=True) if m)
    trained_text = "".join(p for p, m in zip(pieces, mask, strict=True) if not m)
    assert trained_text.replace("▁", " ").strip() == "hello world"
    assert "INST" in masked_text and "/INST" in masked_text


@pytest.mark.parametrize("build", [llama2_tokenizer, mistral_tokenizer])
def test_truncation_keeps_eos(tmp_path, build):
    path = write_sentencepiece(tmp_path)
    messages = [Message("user", "hello " * 10), Message("assistant", "world " * 20)]
    full, full_mask = build(path).tokenize_messages(messages)
    tokens, mask = build(path, max_seq_len=20).tokenize_messages(messages)
    assert len(full) > 20 and len(tokens) == 20
    assert tokens[:19] == full[:19] and mask[:19] == full_mask[:19]
    assert tokens[-1] == EOS and mask[-1] is True
    assert full[-1] == EOS and full_mask[-1] is False  # a real reply's eos takes loss
