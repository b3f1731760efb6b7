"""A checkpoint carries the random state a resumed run needs: CPU always, CUDA once in use.

The CUDA half runs on every machine: ``torch.cuda``'s RNG calls are replaced by a fake
device whose state is a tensor, so the test proves the state is written into the rank's
file and put back on load, the path a resumed GPU run with dropout depends on.
"""

import pytest
import torch
from torch import nn

from orchestrator.training import train_state
from orchestrator.training.train_state import load_train_state, save_train_state


class FakeCuda:
    """Two devices' generator states, as ``get_rng_state_all`` and ``set_rng_state`` see them.

    Only ``train_state`` sees it (its ``torch`` is swapped for one whose ``cuda`` is this),
    so DCP's own CUDA checks still see this machine as it is.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, initialized: bool = True) -> None:
        self.states = [
            torch.tensor([1, 2, 3], dtype=torch.uint8),
            torch.tensor([4, 5], dtype=torch.uint8),
        ]
        self.initialized = initialized
        monkeypatch.setattr(train_state, "torch", _TorchWith(self))

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return self.initialized

    def device_count(self) -> int:
        return len(self.states)

    def get_rng_state_all(self) -> list[torch.Tensor]:
        return [s.clone() for s in self.states]

    def set_rng_state(self, state: torch.Tensor, device: int) -> None:
        self.states[device] = state.clone()


class _TorchWith:
    """``torch``, but with ``cuda`` replaced."""

    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda

    def __getattr__(self, name: str):
        return getattr(torch, name)


def _model_and_optimizer():
    torch.manual_seed(0)
    model = nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def _save(directory, model, optimizer) -> None:
    save_train_state(
        directory,
        model=model,
        optimizer=optimizer,
        extra={"step": 3},
        rank=0,
        trainable_only=False,
    )


def _load(directory, model, optimizer) -> dict:
    return load_train_state(
        directory, model=model, optimizer=optimizer, rank=0, trainable_only=False
    )


def test_resume_restores_the_cpu_random_state(tmp_path):
    model, optimizer = _model_and_optimizer()
    torch.manual_seed(123)
    _save(tmp_path, model, optimizer)
    expected = torch.rand(5)
    torch.manual_seed(999)
    assert _load(tmp_path, model, optimizer) == {"step": 3}
    assert torch.equal(torch.rand(5), expected)


def test_resume_restores_every_cuda_devices_random_state(tmp_path, monkeypatch):
    cuda = FakeCuda(monkeypatch)
    model, optimizer = _model_and_optimizer()
    saved = [s.clone() for s in cuda.states]
    _save(tmp_path, model, optimizer)
    written = torch.load(tmp_path / "rank0.pt")["cuda_rng"]
    assert all(torch.equal(a, b) for a, b in zip(written, saved, strict=True))

    cuda.states = [torch.zeros(3, dtype=torch.uint8), torch.zeros(2, dtype=torch.uint8)]
    assert _load(tmp_path, model, optimizer) == {"step": 3}
    assert all(torch.equal(a, b) for a, b in zip(cuda.states, saved, strict=True))


def test_cuda_state_is_left_out_until_cuda_is_in_use(tmp_path, monkeypatch):
    FakeCuda(monkeypatch, initialized=False)
    model, optimizer = _model_and_optimizer()
    _save(tmp_path, model, optimizer)
    assert "cuda_rng" not in torch.load(tmp_path / "rank0.pt")
