"""A batching loader whose position can be saved between batches and restored exactly.

``torch.utils.data.DataLoader`` with worker processes reads indices ahead of the batches it
has handed out, so the sampler's own position overshoots what training consumed.
:class:`StatefulDataLoader` counts the batches it has yielded instead and keeps its
:class:`ShardedSampler` at that position, so a checkpoint taken after any batch resumes with
the next one. It uses a ``DataLoader`` underneath (workers, pinning and all).
"""

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset

from orchestrator.datasets.sampler import ShardedSampler


class StatefulDataLoader:
    """Batches of ``dataset`` in ``sampler`` order, resumable between batches.

    Args:
        dataset: Map-style dataset.
        batch_size: Samples per batch (per rank).
        sampler: Yields this rank's indices; default: one rank, dataset order.
        collate_fn: Samples -> batch (e.g. ``padded_collate_sft`` with the pad id bound).
        drop_last: Drop an epoch's last, smaller batch.
        **dataloader_kwargs: Passed to ``DataLoader`` (``num_workers``, ``pin_memory``, ...).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int = 1,
        sampler: ShardedSampler | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        drop_last: bool = False,
        **dataloader_kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        if sampler is None:
            sampler = ShardedSampler(len(dataset), shuffle=False)
        self.sampler = sampler
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.dataloader_kwargs = dataloader_kwargs

    def __len__(self) -> int:
        """Batches in a full epoch."""
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[Any]:
        epoch, start = self.sampler.epoch, self.sampler.index
        remaining = self.sampler.indices(epoch)[start:]
        batches = [
            remaining[i : i + self.batch_size] for i in range(0, len(remaining), self.batch_size)
        ]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches,
            collate_fn=self.collate_fn,
            **self.dataloader_kwargs,
        )
        consumed = start
        for indices, batch in zip(batches, loader, strict=True):
            consumed += len(indices)
            self.sampler.advance(epoch, consumed)
            yield batch
        self.sampler.advance(epoch + 1, 0)

    def state_dict(self) -> dict[str, Any]:
        """The position after the last batch yielded, in samples (so batch size may change)."""
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next sample is the one that came next before."""
        self.sampler.load_state_dict(state["sampler"])
