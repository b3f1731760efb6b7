import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from orchestrator.datasets import ShardedSampler, StatefulDataLoader, padded_collate_sft


def shards(n, world_size, epoch=0, **kwargs):
    out = []
    for rank in range(world_size):
        sampler = ShardedSampler(n, rank=rank, world_size=world_size, seed=7, **kwargs)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


def test_shards_disjoint_and_complete():
    parts = shards(12, 4)
    assert all(len(p) == 3 for p in parts)
    flat = [i for p in parts for i in p]
    assert sorted(flat) == list(range(12))  # disjoint and complete


def test_uneven_dataset_pads_or_drops():
    padded = shards(10, 4)
    assert all(len(p) == 3 for p in padded)  # equal steps on every rank
    flat = [i for p in padded for i in p]
    assert set(flat) == set(range(10)) and len(flat) == 12  # complete; 2 repeats
    dropped = shards(10, 4, drop_last=True)
    flat = [i for p in dropped for i in p]
    assert len(flat) == 8 and len(set(flat)) == 8  # disjoint, the tail left out


def test_reshuffle_differs_by_epoch_and_is_identical_across_ranks():
    epoch0, epoch1 = shards(64, 2, epoch=0), shards(64, 2, epoch=1)
    assert epoch0 != epoch1
    assert sorted(epoch0[0] + epoch0[1]) == sorted(epoch1[0] + epoch1[1]) == list(range(64))
    # Every rank draws the same permutation: independently built samplers agree.
    again = shards(64, 2, epoch=1)
    assert again == epoch1
    assert ShardedSampler(64, seed=1).indices(0) != ShardedSampler(64, seed=2).indices(0)
    assert ShardedSampler(5, shuffle=False, world_size=2, rank=1).indices(3) == [1, 3, 0]


def test_iterating_again_moves_to_the_next_epoch():
    sampler = ShardedSampler(16, seed=3)
    first, second = list(sampler), list(sampler)
    assert first == sampler.indices(0) and second == sampler.indices(1)
    assert sampler.state_dict()["epoch"] == 2 and sampler.state_dict()["index"] == 0


def test_sampler_exact_resume_mid_epoch():
    def run(sampler, epochs=3):
        seen = []
        for epoch in range(sampler.epoch, epochs):
            sampler.set_epoch(epoch)
            seen += list(sampler)
        return seen

    expected = run(ShardedSampler(20, rank=1, world_size=2, seed=5))
    interrupted = ShardedSampler(20, rank=1, world_size=2, seed=5)
    interrupted.set_epoch(0)
    head = list(itertools.islice(iter(interrupted), 4))  # 4 of epoch 0's 10
    state = interrupted.state_dict()
    assert (state["epoch"], state["index"]) == (0, 4)
    resumed = ShardedSampler(20, rank=1, world_size=2, seed=5)
    resumed.load_state_dict(state)
    assert head + run(resumed) == expected


def test_sampler_bad_arguments_and_mismatched_state():
    with pytest.raises(ValueError, match="rank=2, world_size=2"):
        ShardedSampler(10, rank=2, world_size=2)
    with pytest.raises(ValueError, match="empty"):
        ShardedSampler(0)
    with pytest.raises(ValueError, match="3 samples leave nothing for each of 4 ranks"):
        ShardedSampler(3, world_size=4, drop_last=True)
    state = ShardedSampler(10, world_size=2, seed=1).state_dict()
    with pytest.raises(ValueError, match=r"world_size=2 but this run has world_size=4"):
        ShardedSampler(10, world_size=4, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"seed=1 but this run has seed=9"):
        ShardedSampler(10, world_size=2, seed=9).load_state_dict(state)


def test_works_with_torch_dataloader():
    data = [{"tokens": [i], "labels": [i]} for i in range(10)]
    sampler = ShardedSampler(len(data), rank=0, world_size=2, seed=0)
    loader = DataLoader(data, batch_size=2, sampler=sampler, collate_fn=padded_collate_sft)
    got = torch.cat([b["tokens"][:, 0] for b in loader]).tolist()
    assert got == sampler.indices(0)


# ---- StatefulDataLoader --------------------------------------------------------------------


DATA = [{"tokens": [i, i + 1], "labels": [i, -100]} for i in range(23)]


def make_loader(rank=0, world_size=2, **kwargs):
    sampler = ShardedSampler(len(DATA), rank=rank, world_size=world_size, seed=11)
    return StatefulDataLoader(
        DATA, batch_size=3, sampler=sampler, collate_fn=padded_collate_sft, **kwargs
    )


def run_epochs(loader, epochs, stop_after=None):
    """Train-loop shape: set_epoch, then batches; returns the first token of every sample."""
    seen = []
    for epoch in range(loader.sampler.epoch, epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            seen.append(batch["tokens"][:, 0].tolist())
            if stop_after is not None and len(seen) == stop_after:
                return seen
    return seen


@pytest.mark.parametrize("k", [0, 1, 3, 4, 5, 9])
def test_loader_exact_resume(k):
    expected = run_epochs(make_loader(), epochs=3)
    assert len(expected) == 3 * 4  # 12 samples per rank per epoch, batches of 3
    interrupted = make_loader()
    head = run_epochs(interrupted, epochs=3, stop_after=k) if k else []
    state = interrupted.state_dict()
    resumed = make_loader()
    resumed.load_state_dict(state)
    assert head + run_epochs(resumed, epochs=3) == expected


def test_loader_resume_with_workers_counts_consumed_batches():
    expected = run_epochs(make_loader(), epochs=1)
    interrupted = make_loader(num_workers=1)
    head = run_epochs(interrupted, epochs=1, stop_after=2)  # the worker has read ahead
    state = interrupted.state_dict()
    assert state["sampler"]["index"] == 6
    resumed = make_loader()
    resumed.load_state_dict(state)
    assert head + run_epochs(resumed, epochs=1) == expected


def test_loader_batches_and_drop_last():
    loader = make_loader(rank=1)
    assert len(loader) == 4  # 12 samples per rank
    batches = list(loader)
    assert [len(b["tokens"]) for b in batches] == [3, 3, 3, 3]
    single = StatefulDataLoader(DATA, batch_size=5, drop_last=True, collate_fn=padded_collate_sft)
    assert len(single) == 4
    order = [t for b in single for t in b["tokens"][:, 0].tolist()]
    assert order == list(range(20))  # default sampler: one rank, dataset order
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        StatefulDataLoader(DATA, batch_size=0)
