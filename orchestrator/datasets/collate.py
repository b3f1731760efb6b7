"""Collate functions: a list of samples -> a batch of tensors for the model and loss.

Labels stay aligned with tokens (``labels[b, i]`` belongs to ``tokens[b, i]``); the recipe
shifts them by one position for next-token prediction, as torchtune's recipes do.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from modeling.data import CROSS_ENTROPY_IGNORE_IDX
from orchestrator.datasets.packing import packed_document_ids


def padded_collate_sft(
    batch: Sequence[Mapping[str, Any]],
    padding_idx: int = 0,
    ignore_idx: int = CROSS_ENTROPY_IGNORE_IDX,
    pad_to_multiple_of: int = 1,
) -> dict[str, torch.Tensor]:
    """Right-pad variable-length samples to the longest in the batch.

    Args:
        batch: Samples with ``tokens`` and ``labels`` of equal length.
        padding_idx: Token id for padding (the tokenizer's ``pad_id``).
        ignore_idx: Label for padding, ignored by the loss.
        pad_to_multiple_of: Round the padded length up to a multiple of this (fewer distinct
            shapes for compiled kernels).

    Returns:
        ``tokens`` and ``labels``, LongTensors of shape ``[batch, seq]``.
    """
    if pad_to_multiple_of < 1:
        raise ValueError(f"pad_to_multiple_of must be >= 1, got {pad_to_multiple_of}")
    if not batch:
        raise ValueError("padded_collate_sft got an empty batch")
    for i, sample in enumerate(batch):
        if len(sample["tokens"]) != len(sample["labels"]):
            raise ValueError(
                f"Sample {i} of the batch has {len(sample['tokens'])} tokens but "
                f"{len(sample['labels'])} labels"
            )
    longest = max(len(sample["tokens"]) for sample in batch)
    seq = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    tokens = torch.full((len(batch), seq), padding_idx, dtype=torch.long)
    labels = torch.full((len(batch), seq), ignore_idx, dtype=torch.long)
    for i, sample in enumerate(batch):
        n = len(sample["tokens"])
        tokens[i, :n] = torch.as_tensor(sample["tokens"], dtype=torch.long)
        labels[i, :n] = torch.as_tensor(sample["labels"], dtype=torch.long)
    return {"tokens": tokens, "labels": labels}


def padded_collate_packed(batch: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack packs (from ``PackedDataset``) with the document id of every token.

    The attention mask is not built here: the collate runs in the data loader, before the
    batch reaches its device, and which mask is best depends on that device. The recipe
    turns ``document_ids`` into it once per batch
    (``modeling.modules.attention_masks.packed_attention_mask``: a flex_attention
    BlockMask on CUDA, a dense block-causal mask on the CPU).

    Returns:
        ``tokens``, ``labels``, ``input_pos`` and ``document_ids``, all ``[batch, seq]``
        LongTensors; ``model(tokens, mask=packed_attention_mask(document_ids),
        input_pos=input_pos)`` is the packed forward.
    """
    if not batch:
        raise ValueError("padded_collate_packed got an empty batch")
    lengths = {len(sample["tokens"]) for sample in batch}
    if len(lengths) != 1:
        raise ValueError(f"Packs in a batch must have one length, got lengths {sorted(lengths)}")
    out = {
        key: torch.stack([torch.as_tensor(sample[key], dtype=torch.long) for sample in batch])
        for key in ("tokens", "labels", "input_pos")
    }
    out["document_ids"] = packed_document_ids([sample["seq_lens"] for sample in batch])
    return out
