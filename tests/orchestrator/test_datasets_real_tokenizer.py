"""Datasets through a real tokenizer: Llama 2's, on a sentencepiece model trained here."""

import io
import json
import random

import pytest
import sentencepiece
import torch

from modeling.llama2 import llama2_tokenizer
from orchestrator.datasets import (
    ShardedSampler,
    StatefulDataLoader,
    alpaca_dataset,
    chat_dataset,
    padded_collate_packed,
    padded_collate_sft,
    text_completion_dataset,
)

WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "what",
    "is",
    "two",
    "plus",
    "three",
    "answer",
    "five",
)


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(500)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="bpe",
        vocab_size=320,
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    path = tmp_path_factory.mktemp("llama2") / "tokenizer.model"
    path.write_bytes(model.getvalue())
    return path


@pytest.fixture
def alpaca_file(tmp_path):
    rows = [
        {"instruction": "what is two plus three", "input": "", "output": "five"},
        {"instruction": "answer", "input": "the quick brown fox", "output": "jumps over a dog"},
    ] * 4
    path = tmp_path / "alpaca.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_alpaca_through_llama2_tokenizer(tokenizer_path, alpaca_file):
    tok = llama2_tokenizer(tokenizer_path)
    ds = alpaca_dataset(tok, source=alpaca_file, train_on_input=False)
    sample = ds[0]
    tokens, mask = tok.tokenize_messages(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    )
    assert len(tokens) == len(mask)
    # Only the reply (and its EOS) takes loss; the prompt is masked.
    trained = [label for label in sample["labels"] if label != -100]
    assert trained and trained[-1] == tok.eos_id
    assert tok.decode(trained).strip() == "five"
    assert "### Instruction:" in tok.decode(sample["tokens"])
    assert sample["tokens"][0] == tok.bos_id
    # train_on_input: the prompt takes loss too.
    full = alpaca_dataset(tok, source=alpaca_file)[0]
    assert sum(label != -100 for label in full["labels"]) > len(trained)


def test_truncation_and_packing_with_llama2_tokenizer(tokenizer_path, alpaca_file):
    tok = llama2_tokenizer(tokenizer_path, max_seq_len=24)
    ds = alpaca_dataset(tok, source=alpaca_file)
    assert all(len(ds[i]["tokens"]) <= 24 for i in range(len(ds)))
    packed = alpaca_dataset(tok, source=alpaca_file, packed=True, max_seq_len=64)
    batch = padded_collate_packed([packed[0], packed[1]])
    assert batch["tokens"].shape == (2, 64) and batch["document_ids"].shape == (2, 64)
    assert int(batch["tokens"].max()) < 320  # ids within the vocab, pad id included


def test_chat_and_text_completion_with_llama2_tokenizer(tokenizer_path, tmp_path):
    tok = llama2_tokenizer(tokenizer_path)
    conversations = [
        {
            "conversations": [
                {"from": "system", "value": "a lazy dog"},
                {"from": "human", "value": "what is two plus three"},
                {"from": "gpt", "value": "five"},
            ]
        }
    ]
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps(conversations))
    sample = chat_dataset(
        tok, source=str(chat), conversation_column="conversations", conversation_style="sharegpt"
    )[0]
    trained = [label for label in sample["labels"] if label != -100]
    assert tok.decode(trained).strip() == "five"

    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox\njumps over a lazy dog\n")
    ds = text_completion_dataset(tok, source=str(text))
    assert ds[0]["tokens"] == tok.encode("the quick brown fox")
    assert ds[1]["labels"] == ds[1]["tokens"] and ds[1]["tokens"][-1] == tok.eos_id

    sampler = ShardedSampler(len(ds), rank=0, world_size=1, seed=0)
    loader = StatefulDataLoader(
        ds,
        batch_size=2,
        sampler=sampler,
        collate_fn=lambda b: padded_collate_sft(b, padding_idx=tok.pad_id),
    )
    batch = next(iter(loader))
    assert batch["tokens"].dtype == torch.long and batch["tokens"].shape[0] == 2
