"""Phi-3 mini and Gemma: added/turn tokens and their chat templates token by token."""

import pytest

from modeling.data import Message
from modeling.gemma import gemma_tokenizer
from modeling.phi3 import phi3_mini_tokenizer
from tests.modeling.tokenizer_fixtures import processor, write_sentencepiece

PHI3_IDS = {
    "<|endoftext|>": 32000,
    "<|assistant|>": 32001,
    "<|placeholder1|>": 32002,
    "<|placeholder2|>": 32003,
    "<|placeholder3|>": 32004,
    "<|placeholder4|>": 32005,
    "<|system|>": 32006,
    "<|end|>": 32007,
    "<|placeholder5|>": 32008,
    "<|placeholder6|>": 32009,
    "<|user|>": 32010,
}
ENDOFTEXT, ASSISTANT, SYSTEM, END, USER = (
    PHI3_IDS[t] for t in ("<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>")
)
# The Gemma-like test model: <pad> 0, <eos> 1, <bos> 2, <unk> 3, then the turn pieces.
G_PAD, G_EOS, G_BOS, SOT, EOT = 0, 1, 2, 4, 5

CONVERSATION = [
    Message("system", "You are helpful"),
    Message("user", "What is two plus two?"),
    Message("assistant", "Four."),
]


def split_at(sp, prompt: str, reply: str, reply_masked: bool) -> list[tuple[int, bool]]:
    """sp ids of ``prompt + reply`` as one string, prompt tokens masked."""
    whole, head = sp.encode(prompt + reply), sp.encode(prompt)
    assert whole[: len(head)] == head  # the split point is a token boundary
    return [(t, True) for t in head] + [(t, reply_masked) for t in whole[len(head) :]]


@pytest.fixture
def phi3(tmp_path):
    return phi3_mini_tokenizer(write_sentencepiece(tmp_path))


@pytest.fixture
def gemma(tmp_path):
    return gemma_tokenizer(write_sentencepiece(tmp_path, gemma=True))


def test_phi3_ids(phi3):
    assert phi3.special_tokens.items() >= {i: t for t, i in PHI3_IDS.items()}.items()
    assert (phi3.bos_id, phi3.eos_id, phi3.pad_id) == (1, ENDOFTEXT, ENDOFTEXT)
    assert phi3.stop_tokens == [ENDOFTEXT, END]
    assert phi3.vocab_size == 32011
    assert phi3.decode(list(PHI3_IDS.values()), skip_special_tokens=False) == "".join(PHI3_IDS)
    assert phi3.decode(list(PHI3_IDS.values())) == ""
    # Special spellings in text are plain text, never the added ids.
    ids = phi3.encode("<|user|><|end|>", add_bos=False, add_eos=False)
    assert ids == processor().encode("<|user|><|end|>")
    assert not set(ids) & set(PHI3_IDS.values())


def test_phi3_chat_format(phi3):
    sp = processor()
    newline = [(t, True) for t in sp.encode("\n")]
    expected = [(1, True), (SYSTEM, True), *[(t, True) for t in sp.encode("\nYou are helpful")]]
    expected += [(END, True), *newline]
    expected += [(USER, True), *[(t, True) for t in sp.encode("\nWhat is two plus two?")]]
    expected += [(END, True), *newline]
    expected += [(ASSISTANT, True), *split_at(sp, "\n", "Four.", reply_masked=False)]
    expected += [(END, False), *[(t, False) for t in sp.encode("\n")], (ENDOFTEXT, True)]
    tokens, mask = phi3.tokenize_messages(CONVERSATION)
    assert list(zip(tokens, mask, strict=True)) == expected
    assert phi3.decode(tokens, skip_special_tokens=False) == (
        "<s><|system|>\nYou are helpful<|end|>\n<|user|>\nWhat is two plus two?<|end|>\n"
        "<|assistant|>\nFour.<|end|>\n<|endoftext|>"
    )


def test_phi3_generation_prompt(phi3):
    tokens, _ = phi3.tokenize_messages([Message("user", "hi"), Message("assistant", "", eot=False)])
    assert tokens[-1 - len(processor().encode("\n")) :] == [ASSISTANT, *processor().encode("\n")]
    assert ENDOFTEXT not in tokens


def test_phi3_rejects_ipython(phi3):
    with pytest.raises(ValueError, match="Phi-3 chat format has no 'ipython' role"):
        phi3.tokenize_messages([Message("user", "hi"), Message("ipython", "42")])


def test_phi3_decode_rejects_ids_between_pieces_and_added_tokens(phi3):
    with pytest.raises(ValueError, match=r"Cannot decode ids \[5000\]"):
        phi3.decode([5000])
    with pytest.raises(ValueError, match=r"ids are 0..32010"):
        phi3.decode([32011])


def test_gemma_ids(gemma):
    assert (gemma.bos_id, gemma.eos_id, gemma.pad_id) == (G_BOS, G_EOS, G_PAD)
    assert (gemma.start_of_turn_id, gemma.end_of_turn_id) == (SOT, EOT)
    assert gemma.stop_tokens == [G_EOS, EOT]
    assert gemma.vocab_size == 420
    text = "hello world 😀"
    assert gemma.decode(gemma.encode(text)) == text


def test_gemma_chat_format(gemma):
    sp = processor(gemma=True)
    newline = sp.encode("\n")
    expected = [(G_BOS, True), (SOT, True)]
    expected += [(t, True) for t in sp.encode("user\nYou are helpful\n\nWhat is two plus two?")]
    expected += [(EOT, True), *[(t, True) for t in newline], (SOT, True)]
    expected += split_at(sp, "model\n", "Four.", reply_masked=False)
    expected += [(EOT, False), *[(t, False) for t in newline], (G_EOS, True)]
    messages = [*CONVERSATION[:2], Message("assistant", "  Four.\n")]
    tokens, mask = gemma.tokenize_messages(messages)
    assert list(zip(tokens, mask, strict=True)) == expected
    assert gemma.decode(tokens, skip_special_tokens=False) == (
        "<bos><start_of_turn>user\nYou are helpful\n\nWhat is two plus two?<end_of_turn>\n"
        "<start_of_turn>model\nFour.<end_of_turn>\n<eos>"
    )


def test_gemma_generation_prompt_and_order(gemma):
    sp = processor(gemma=True)
    tokens, _ = gemma.tokenize_messages(
        [Message("user", "hi"), Message("assistant", "", eot=False)]
    )
    assert tokens[-1 - len(sp.encode("model\n")) :] == [SOT, *sp.encode("model\n")]
    with pytest.raises(ValueError, match="alternating user/assistant"):
        gemma.tokenize_messages([Message("user", "hi"), Message("user", "again")])


@pytest.mark.parametrize("family", ["phi3", "gemma"])
def test_truncation_keeps_eos(tmp_path, family):
    build = {"phi3": phi3_mini_tokenizer, "gemma": gemma_tokenizer}[family]
    path = write_sentencepiece(tmp_path, gemma=family == "gemma")
    messages = [Message("user", "hello " * 10), Message("assistant", "world " * 20)]
    full, full_mask = build(path).tokenize_messages(messages)
    tok = build(path, max_seq_len=16)
    tokens, mask = tok.tokenize_messages(messages)
    assert len(full) > 16 and len(tokens) == 16
    assert tokens[:15] == full[:15] and mask[:15] == full_mask[:15]
    assert tokens[-1] == tok.eos_id and mask[-1] is True
