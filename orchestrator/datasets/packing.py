"""Sample packing: many short samples per fixed-length sequence, attention kept per document.

Packing removes padding waste: samples are concatenated greedily into packs of exactly
``max_seq_len`` tokens. Each pack records ``seq_lens`` (the length of each document in it)
and ``input_pos`` (positions restarting at 0 for each document). :func:`document_ids`
names each token's document; from those the recipe builds, per batch and device, the
block-causal mask that keeps every token from attending to another document
(``modeling.modules.attention_masks``). The tail of a pack is padding (``labels`` -100)
that forms its own document, so every query row of the mask attends to at least itself.
"""

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from modeling.data import CROSS_ENTROPY_IGNORE_IDX
from modeling.modules.attention_masks import block_causal_dense_mask


class PackedDataset(Dataset):
    """Packs a dataset of ``{"tokens", "labels"}`` samples into fixed-length sequences.

    Packing is done once, at construction, in sample order (as torchtune's
    ``PackedDataset``). Items are dicts of LongTensors: ``tokens``, ``labels``,
    ``input_pos`` (each ``[max_seq_len]``) and ``seq_lens`` (``[documents in the pack]``).

    Args:
        ds: Map-style dataset of ``{"tokens": list[int], "labels": list[int]}``.
        max_seq_len: Tokens per pack.
        padding_idx: Token id that pads the last part of a pack.
        max_packs: Stop after this many packs (None: pack everything).
        split_across_pack: Let a sample that does not fit continue in the next pack (its
            remainder starts at position 0 there: a new document). When False, a sample
            that does not fit starts a new pack, and one longer than ``max_seq_len`` is an
            error. True suits continued pre-training, False instruction data, whose samples
            should stay whole.
    """

    def __init__(
        self,
        ds: Dataset,
        *,
        max_seq_len: int,
        padding_idx: int = 0,
        max_packs: int | None = None,
        split_across_pack: bool = False,
    ) -> None:
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be a positive number of tokens, got {max_seq_len}")
        self.ds = ds
        self.max_seq_len = max_seq_len
        self.padding_idx = padding_idx
        self.max_packs = max_packs
        self.split_across_pack = split_across_pack
        self.packs: list[dict[str, list[int]]] = []
        self._pack()
        if not self.packs:
            raise ValueError("PackedDataset: the dataset has no tokens to pack")

    def _pack(self) -> None:
        tokens: list[int] = []
        labels: list[int] = []
        seq_lens: list[int] = []
        for index in range(len(self.ds)):
            sample = self.ds[index]
            doc_tokens, doc_labels = list(sample["tokens"]), list(sample["labels"])
            if len(doc_tokens) != len(doc_labels):
                raise ValueError(
                    f"Sample {index} has {len(doc_tokens)} tokens but {len(doc_labels)} labels"
                )
            if len(doc_tokens) > self.max_seq_len and not self.split_across_pack:
                raise ValueError(
                    f"Sample {index} has {len(doc_tokens)} tokens, more than max_seq_len="
                    f"{self.max_seq_len}; truncate samples (set the tokenizer's max_seq_len) or "
                    "pack with split_across_pack=True"
                )
            if not self.split_across_pack and len(tokens) + len(doc_tokens) > self.max_seq_len:
                self._finish(tokens, labels, seq_lens)
                tokens, labels, seq_lens = [], [], []
            while doc_tokens:
                room = self.max_seq_len - len(tokens)
                tokens += doc_tokens[:room]
                labels += doc_labels[:room]
                seq_lens.append(len(doc_tokens[:room]))
                doc_tokens, doc_labels = doc_tokens[room:], doc_labels[room:]
                if len(tokens) == self.max_seq_len:
                    self._finish(tokens, labels, seq_lens)
                    tokens, labels, seq_lens = [], [], []
                if self._full():
                    return
        if tokens:
            self._finish(tokens, labels, seq_lens)

    def _full(self) -> bool:
        return self.max_packs is not None and len(self.packs) >= self.max_packs

    def _finish(self, tokens: list[int], labels: list[int], seq_lens: list[int]) -> None:
        if not tokens or self._full():
            return
        pad = self.max_seq_len - len(tokens)
        if pad:
            tokens = tokens + [self.padding_idx] * pad
            labels = labels + [CROSS_ENTROPY_IGNORE_IDX] * pad
            seq_lens = seq_lens + [pad]
        input_pos = [pos for length in seq_lens for pos in range(length)]
        self.packs.append(
            {"tokens": tokens, "labels": labels, "input_pos": input_pos, "seq_lens": seq_lens}
        )

    def __len__(self) -> int:
        return len(self.packs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: torch.tensor(v, dtype=torch.long) for k, v in self.packs[index].items()}


def document_ids(seq_lens: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``[seq]`` LongTensor: the index of the document each token of a pack belongs to."""
    lengths = torch.as_tensor(seq_lens, dtype=torch.long)
    return torch.repeat_interleave(torch.arange(len(lengths)), lengths)


def packed_document_ids(seq_lens: Sequence[Sequence[int] | torch.Tensor]) -> torch.Tensor:
    """``[batch, seq]`` document ids for a batch of packs (each ``seq_lens`` sums to ``seq``)."""
    ids = [document_ids(lengths) for lengths in seq_lens]
    sizes = {len(i) for i in ids}
    if len(sizes) != 1:
        raise ValueError(f"Packs in a batch must have one length; seq_lens sum to {sorted(sizes)}")
    return torch.stack(ids)


def block_causal_mask(seq_lens: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """The ``[seq, seq]`` boolean mask of a pack: True where query i may attend key j.

    That is: j <= i and both tokens belong to the same document. ``seq`` is
    ``sum(seq_lens)``.
    """
    return block_causal_dense_mask(document_ids(seq_lens)[None])[0]


def packed_block_causal_mask(seq_lens: Sequence[Sequence[int] | torch.Tensor]) -> torch.Tensor:
    """Dense boolean ``[batch, seq, seq]`` masks of a batch of packs (``block_causal_mask``)."""
    return block_causal_dense_mask(packed_document_ids(seq_lens))
