"""The data pipeline: sources -> messages -> tokens -> packs -> per-rank batches.

Builders keep torchtune's names and keywords (``alpaca_dataset``, ``instruct_dataset``,
``chat_dataset``, ``text_completion_dataset``, ...), so configs that reference
``torchtune.datasets.*`` resolve here. Nothing in this package needs Ray or the ``datasets``
library: sources are read with the standard library (and pyarrow for Parquet), Hub repos are
fetched with ``huggingface_hub``.

A typical per-rank setup::

    ds = alpaca_dataset(tokenizer, packed=True)
    sampler = ShardedSampler(len(ds), rank=rank, world_size=world_size, seed=cfg.seed)
    loader = StatefulDataLoader(ds, batch_size=2, sampler=sampler,
                                collate_fn=padded_collate_packed)
    for epoch in range(start_epoch, epochs):
        sampler.set_epoch(epoch)
        for batch in loader:          # checkpoint loader.state_dict() with the model
            ...
"""

from modeling.data import CROSS_ENTROPY_IGNORE_IDX
from orchestrator.datasets.builders import (
    alpaca_cleaned_dataset,
    alpaca_dataset,
    chat_dataset,
    instruct_dataset,
    text_completion_dataset,
)
from orchestrator.datasets.collate import padded_collate_packed, padded_collate_sft
from orchestrator.datasets.loader import StatefulDataLoader
from orchestrator.datasets.messages import (
    AlpacaToMessages,
    InputOutputToMessages,
    OpenAIToMessages,
    ShareGPTToMessages,
)
from orchestrator.datasets.packing import (
    PackedDataset,
    block_causal_mask,
    packed_block_causal_mask,
)
from orchestrator.datasets.sampler import ShardedSampler
from orchestrator.datasets.sft import SFTDataset, TextCompletionDataset
from orchestrator.datasets.sources import load_rows

__all__ = [
    "CROSS_ENTROPY_IGNORE_IDX",
    "AlpacaToMessages",
    "InputOutputToMessages",
    "OpenAIToMessages",
    "PackedDataset",
    "SFTDataset",
    "ShardedSampler",
    "ShareGPTToMessages",
    "StatefulDataLoader",
    "TextCompletionDataset",
    "alpaca_cleaned_dataset",
    "alpaca_dataset",
    "block_causal_mask",
    "chat_dataset",
    "instruct_dataset",
    "load_rows",
    "packed_block_causal_mask",
    "padded_collate_packed",
    "padded_collate_sft",
    "text_completion_dataset",
]
