import pytest
import torch

from modeling.modules.attention_masks import packed_attention_mask
from orchestrator.datasets import (
    PackedDataset,
    block_causal_mask,
    packed_block_causal_mask,
    padded_collate_packed,
    padded_collate_sft,
)


def docs(*lengths, start=10):
    """Samples whose tokens say which document they come from (doc k -> start + k)."""
    out = []
    for k, n in enumerate(lengths):
        tokens = [start + k] * n
        out.append({"tokens": tokens, "labels": [t + 100 for t in tokens]})
    return out


def test_pack_lengths_exact_and_greedy():
    packed = PackedDataset(docs(3, 4, 2, 5, 1), max_seq_len=8, padding_idx=0)
    # Greedy, whole samples: [3+4] [2+5+1] -> packs of 7(+1 pad) and 8.
    assert len(packed) == 2
    first, second = packed[0], packed[1]
    for pack in (first, second):
        assert all(pack[k].shape == (8,) for k in ("tokens", "labels", "input_pos"))
        assert pack["tokens"].dtype == torch.long
        assert int(pack["seq_lens"].sum()) == 8
    assert first["seq_lens"].tolist() == [3, 4, 1]  # the padding is its own document
    assert first["tokens"].tolist() == [10, 10, 10, 11, 11, 11, 11, 0]
    assert first["labels"].tolist() == [110] * 3 + [111] * 4 + [-100]
    assert first["input_pos"].tolist() == [0, 1, 2, 0, 1, 2, 3, 0]
    assert second["seq_lens"].tolist() == [2, 5, 1]
    assert second["input_pos"].tolist() == [0, 1, 0, 1, 2, 3, 4, 0]


def test_last_pack_padded_with_pad_id():
    packed = PackedDataset(docs(5, 5), max_seq_len=8, padding_idx=7)
    assert len(packed) == 2
    last = packed[1]
    assert last["tokens"].tolist() == [11] * 5 + [7] * 3
    assert last["labels"].tolist()[5:] == [-100] * 3
    assert last["seq_lens"].tolist() == [5, 3]


def test_split_across_pack_continues_documents():
    packed = PackedDataset(docs(5, 6, 2), max_seq_len=4, split_across_pack=True)
    flat = torch.cat([packed[i]["tokens"] for i in range(len(packed))]).tolist()
    assert flat == [10] * 5 + [11] * 6 + [12] * 2 + [0] * 3
    assert [packed[i]["seq_lens"].tolist() for i in range(len(packed))] == [
        [4],
        [1, 3],
        [3, 1],
        [1, 3],
    ]
    # A document's remainder starts a new document (positions from 0) in the next pack.
    assert packed[1]["input_pos"].tolist() == [0, 0, 1, 2]


def test_too_long_sample_and_max_packs_and_empty():
    with pytest.raises(ValueError, match=r"Sample 1 has 9 tokens, more than max_seq_len=8"):
        PackedDataset(docs(2, 9), max_seq_len=8)
    assert len(PackedDataset(docs(8, 8, 8, 8), max_seq_len=8, max_packs=2)) == 2
    with pytest.raises(ValueError, match="no tokens to pack"):
        PackedDataset(docs(0, 0), max_seq_len=8)
    with pytest.raises(ValueError, match="4 tokens but 3 labels"):
        PackedDataset([{"tokens": [1, 2, 3, 4], "labels": [1, 2, 3]}], max_seq_len=8)


def test_block_causal_mask_blocks_other_documents():
    mask = block_causal_mask([3, 2, 1])
    assert mask.shape == (6, 6) and mask.dtype == torch.bool
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 1, 1, 0],
            [0, 0, 0, 0, 0, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)
    assert mask.any(dim=1).all()  # every query attends somewhere: no NaN rows in softmax


def test_collate_packed_batches_masks_and_positions():
    packed = PackedDataset(docs(3, 4, 2, 5, 1), max_seq_len=8)
    batch = padded_collate_packed([packed[0], packed[1]])
    assert set(batch) == {"tokens", "labels", "input_pos", "document_ids"}
    assert batch["tokens"].shape == (2, 8) and batch["input_pos"].shape == (2, 8)
    assert batch["document_ids"].tolist() == [[0, 0, 0, 1, 1, 1, 1, 2], [0, 0, 1, 1, 1, 1, 1, 2]]
    mask = packed_block_causal_mask([packed[0]["seq_lens"], packed[1]["seq_lens"]])
    assert mask.shape == (2, 8, 8) and mask.dtype == torch.bool
    for b in range(2):
        doc = batch["tokens"][b]
        # No query attends a key of another document (padding counts as one).
        for q in range(8):
            for k in range(8):
                if mask[b, q, k]:
                    assert k <= q and doc[k] == doc[q]
        # Positions restart at every document boundary.
        assert torch.equal(batch["input_pos"][b], packed[b]["input_pos"])
    with pytest.raises(ValueError, match="one length"):
        padded_collate_packed([packed[0], {**packed[1], "tokens": torch.zeros(5)}])
    with pytest.raises(ValueError, match="one length"):
        packed_block_causal_mask([[3, 2], [4]])


def test_packed_model_forward_equals_documents_alone():
    """A model fed a pack computes, per document, what it computes on that document alone."""
    from modeling.llama3 import llama3_tiny

    torch.manual_seed(0)
    model = llama3_tiny().eval()
    generator = torch.Generator().manual_seed(1)
    samples = []
    for n in (5, 3, 6):
        tokens = torch.randint(1, 64, (n,), generator=generator).tolist()
        samples.append({"tokens": tokens, "labels": tokens})
    packed = PackedDataset(samples, max_seq_len=16)
    assert len(packed) == 1
    batch = padded_collate_packed([packed[0]])
    mask = packed_attention_mask(batch["document_ids"])  # the recipe's mask for this device
    with torch.no_grad():
        logits = model(batch["tokens"], mask=mask, input_pos=batch["input_pos"])
        offset = 0
        for sample in samples:
            n = len(sample["tokens"])
            alone = model(torch.tensor([sample["tokens"]]))
            torch.testing.assert_close(logits[:, offset : offset + n], alone, atol=1e-5, rtol=1e-4)
            offset += n


# ---- padded_collate_sft ------------------------------------------------------------------


def test_padded_collate_sft_pads_tokens_and_labels():
    batch = [
        {"tokens": [5, 6, 7], "labels": [-100, 6, 7]},
        {"tokens": [8], "labels": [8]},
    ]
    out = padded_collate_sft(batch, padding_idx=3)
    assert out["tokens"].dtype == torch.long and out["labels"].dtype == torch.long
    assert out["tokens"].tolist() == [[5, 6, 7], [8, 3, 3]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    multiple = padded_collate_sft(batch, padding_idx=0, ignore_idx=-1, pad_to_multiple_of=4)
    assert multiple["tokens"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert multiple["labels"].tolist() == [[-100, 6, 7, -1], [8, -1, -1, -1]]


def test_padded_collate_sft_bad_input():
    with pytest.raises(ValueError, match="Sample 0 of the batch has 2 tokens but 1 labels"):
        padded_collate_sft([{"tokens": [1, 2], "labels": [1]}])
    with pytest.raises(ValueError, match="pad_to_multiple_of must be >= 1"):
        padded_collate_sft([{"tokens": [1], "labels": [1]}], pad_to_multiple_of=0)
    with pytest.raises(ValueError, match="empty batch"):
        padded_collate_sft([])
