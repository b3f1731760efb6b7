"""Save and restore everything a resumed run needs to continue exactly.

Sharded tensors (trainable weights and optimizer state) go through torch distributed
checkpointing (DCP), each rank writing its own shards; per-rank scalars (step, data
position, scheduler, RNG) go into a small ``rank<N>.pt`` beside them.
"""

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)


def save_train_state(
    directory: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any],
    rank: int,
    trainable_only: bool,
) -> None:
    """Write a resumable checkpoint of this rank's part of the run into ``directory``.

    Args:
        directory: An empty directory (each rank writes its own files into it).
        model: The (possibly FSDP-sharded) model.
        optimizer: Its optimizer.
        extra: This rank's scalars: step, data position, scheduler state.
        rank: This worker's rank.
        trainable_only: Save only trainable parameters (LoRA adapters); frozen base
            weights are reloaded from the base checkpoint on resume.
    """
    options = StateDictOptions(ignore_frozen_params=trainable_only)
    state = {
        "model": get_model_state_dict(model, options=options),
        "optim": get_optimizer_state_dict(model, optimizer, options=options),
    }
    with _single_process_ok():
        dcp.save(state, checkpoint_id=str(directory))
    torch.save({**extra, "rng": torch.get_rng_state()}, directory / f"rank{rank}.pt")


def load_train_state(
    directory: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
    trainable_only: bool,
) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_train_state`; return this rank's extras."""
    options = StateDictOptions(ignore_frozen_params=trainable_only)
    state = {
        "model": get_model_state_dict(model, options=options),
        "optim": get_optimizer_state_dict(model, optimizer, options=options),
    }
    with _single_process_ok():
        dcp.load(state, checkpoint_id=str(directory))
    set_model_state_dict(model, state["model"], options=StateDictOptions(strict=False))
    set_optimizer_state_dict(model, optimizer, state["optim"], options=options)
    extra = torch.load(directory / f"rank{rank}.pt", weights_only=True)
    torch.set_rng_state(extra.pop("rng"))
    return extra


@contextmanager
def _single_process_ok():
    """DCP warns when used without a process group; a one-process run is meant to be so."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield
