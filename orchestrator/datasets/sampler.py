"""Per-rank sharding of sample indices with an exactly resumable position.

Like ``torch.utils.data.DistributedSampler``: each epoch every rank draws the same seeded
permutation (``torch.Generator`` seeded with ``seed + epoch``) and takes every
``world_size``-th index from position ``rank``, so shards are disjoint and together cover
the dataset. Unlike it, the sampler remembers how far it got: ``state_dict()`` holds
``(epoch, index)``, and a sampler restored from it yields exactly what an uninterrupted one
would have yielded next.
"""

from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import Sampler


class ShardedSampler(Sampler[int]):
    """Yields this rank's sample indices for the current epoch, from the saved position.

    Position semantics: ``index`` counts the indices of the current epoch already yielded.
    Running off the end of an epoch moves to ``(epoch + 1, 0)``, so looping over the sampler
    (or a loader built on it) again starts the next, reshuffled epoch. ``set_epoch(e)`` for
    the epoch the sampler is in keeps the position, so the usual loop
    ``for epoch in ...: sampler.set_epoch(epoch); for batch in loader: ...`` also resumes
    mid-epoch after ``load_state_dict``.

    Args:
        dataset_len: Number of samples, or a sized dataset.
        rank: This worker's rank, ``0 <= rank < world_size``.
        world_size: Number of data-parallel ranks.
        seed: Shuffling seed; must be the same on every rank.
        shuffle: Reshuffle each epoch; False keeps dataset order.
        drop_last: Drop the tail that does not divide evenly across ranks. When False the
            first indices are repeated to even out the shards (so all ranks take the same
            number of steps), as ``DistributedSampler`` does.
    """

    def __init__(
        self,
        dataset_len: int | Sized,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        self.dataset_len = dataset_len if isinstance(dataset_len, int) else len(dataset_len)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"Need 0 <= rank < world_size; got rank={rank}, world_size={world_size}"
            )
        if self.dataset_len < 1:
            raise ValueError("ShardedSampler: the dataset is empty")
        if drop_last and self.dataset_len < world_size:
            raise ValueError(
                f"With drop_last=True, {self.dataset_len} samples leave nothing for each of "
                f"{world_size} ranks; use drop_last=False or more data"
            )
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        if drop_last:
            self.num_samples = self.dataset_len // world_size
        else:
            self.num_samples = -(-self.dataset_len // world_size)
        self.epoch = 0
        self.index = 0

    def __len__(self) -> int:
        """Indices this rank yields in a full epoch."""
        return self.num_samples

    def indices(self, epoch: int) -> list[int]:
        """This rank's full shard, in order, for ``epoch``."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.dataset_len, generator=generator).tolist()
        else:
            order = list(range(self.dataset_len))
        total = self.num_samples * self.world_size
        while len(order) < total:  # pad by repeating the start, as DistributedSampler
            order += order[: total - len(order)]
        return order[:total][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        shard = self.indices(epoch)
        while self.epoch == epoch and self.index < len(shard):
            self.index += 1
            yield shard[self.index - 1]
        if self.epoch == epoch:
            self.epoch, self.index = epoch + 1, 0

    def set_epoch(self, epoch: int) -> None:
        """Move to the start of ``epoch``, unless already in it (then keep the position)."""
        if epoch != self.epoch:
            self.epoch, self.index = epoch, 0

    def advance(self, epoch: int, index: int) -> None:
        """Set the position: ``index`` samples of ``epoch`` consumed (used by loaders)."""
        if not 0 <= index <= self.num_samples:
            raise ValueError(f"index must be within 0..{self.num_samples}, got {index}")
        self.epoch, self.index = epoch, index

    def state_dict(self) -> dict[str, Any]:
        """The position and the settings that must match for it to mean the same samples."""
        return {
            "epoch": self.epoch,
            "index": self.index,
            "seed": self.seed,
            "world_size": self.world_size,
            "dataset_len": self.dataset_len,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict` (on any rank).

        Raises:
            ValueError: The state was saved with a different seed, world size, dataset length
                or shuffling, so its position would select other samples.
        """
        for key in ("seed", "world_size", "dataset_len", "shuffle", "drop_last"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"Cannot resume the data order: the checkpoint has {key}={state[key]!r} but "
                    f"this run has {key}={getattr(self, key)!r}; resume with the same {key}, or "
                    "start a fresh data order with set_epoch() instead of loading the state"
                )
        self.advance(int(state["epoch"]), int(state["index"]))
