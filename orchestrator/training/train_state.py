"""Save and restore everything a resumed run needs to continue exactly.

Sharded tensors (trainable weights and optimizer state) go through torch distributed
checkpointing (DCP), each rank writing its own shards; per-rank scalars (step, data
position, scheduler, CPU and CUDA RNG) go into a small ``rank<N>.pt`` beside them. A
LoRA or QLoRA checkpoint holds only the adapters and their optimizer state: frozen base
weights, NF4 ones included, are reloaded from the base checkpoint on resume.
"""

import warnings
from contextlib import contextmanager, nullcontext
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

from modeling.peft.nf4 import nf4_left_out_of_state_dict


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
            weights, dense or NF4, are reloaded from the base checkpoint on resume.
    """
    state = _state(model, optimizer, trainable_only)
    with _single_process_ok():
        dcp.save(state, checkpoint_id=str(directory))
    torch.save({**extra, **_rng_state()}, directory / f"rank{rank}.pt")


def load_train_state(
    directory: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
    trainable_only: bool,
) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_train_state`; return this rank's extras."""
    state = _state(model, optimizer, trainable_only)
    with _single_process_ok():
        dcp.load(state, checkpoint_id=str(directory))
    with _frozen_nf4_left_out(model, trainable_only):
        set_model_state_dict(model, state["model"], options=StateDictOptions(strict=False))
        options = StateDictOptions(ignore_frozen_params=trainable_only)
        set_optimizer_state_dict(model, optimizer, state["optim"], options=options)
    extra = torch.load(directory / f"rank{rank}.pt", weights_only=True)
    torch.set_rng_state(extra.pop("rng"))
    cuda_states = extra.pop("cuda_rng", None)
    if cuda_states is not None and torch.cuda.is_available():
        # Devices the saving process saw and this one sees too (one each under Ray Train).
        for index, cuda_state in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    return extra


def _state(model: nn.Module, optimizer: torch.optim.Optimizer, trainable_only: bool) -> dict:
    """The model and optimizer state DCP saves and loads into (trainable only, if asked)."""
    options = StateDictOptions(ignore_frozen_params=trainable_only)
    with _frozen_nf4_left_out(model, trainable_only):
        return {
            "model": get_model_state_dict(model, options=options),
            "optim": get_optimizer_state_dict(model, optimizer, options=options),
        }


def _frozen_nf4_left_out(model: nn.Module, trainable_only: bool):
    """NF4 bases are buffers, which ``ignore_frozen_params`` does not drop: drop them."""
    return nf4_left_out_of_state_dict(model) if trainable_only else nullcontext()


def _rng_state() -> dict[str, Any]:
    """The CPU random state, and every CUDA device's once CUDA is in use (dropout on GPU)."""
    state: dict[str, Any] = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


@contextmanager
def _single_process_ok():
    """DCP warns when used without a process group; a one-process run is meant to be so."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield
