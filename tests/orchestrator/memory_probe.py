"""Measure one CPU training step the way the recipe runs it, component by component.

The model is built as ``orchestrator/recipes/finetune.py`` builds it (``meta`` device,
adapters trainable and the rest frozen, activation checkpointing if asked, materialised),
then one forward, chunked loss, backward and AdamW step. Measured:

- weights: bytes of every parameter and buffer (NF4 packed codes and absmax included);
- gradients: bytes of every ``.grad`` after backward;
- optimizer: bytes of every tensor in the optimizer's state after the step;
- activations: bytes of the storages created during forward+loss that are still alive
  when the loss is returned, parameters and buffers excluded. Tracking every op's output
  with a ``TorchDispatchMode`` (instead of ``saved_tensors_hooks``) also sees what
  activation checkpointing keeps outside autograd: each layer's input.
"""

import torch
from omegaconf import DictConfig
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from modeling.peft import NF4Weight, get_adapter_params, set_trainable_params
from modeling.sharding import apply_activation_checkpointing, materialize
from orchestrator.config import instantiate
from orchestrator.training.loss import shift_labels


class LiveStorages(TorchDispatchMode):
    """Remembers (weakly) every storage an op returns, to sum those still alive later."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[int, tuple[StorageWeakRef, int]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: D105
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key = storage.data_ptr()
                known = self.refs.get(key)
                if known is None or known[0].expired():  # a freed address can come back
                    self.refs[key] = (StorageWeakRef(storage), storage.nbytes())
        return out

    def live_bytes(self, exclude: set[int]) -> int:
        """Bytes of the recorded storages still alive, except those at ``exclude``."""
        return sum(
            n for key, (ref, n) in self.refs.items() if not ref.expired() and key not in exclude
        )


def measure_step(cfg: DictConfig, checkpointing: bool) -> dict[str, int]:
    """Bytes of weights, gradients, optimizer state and activations of one step of ``cfg``."""
    torch.manual_seed(0)
    with torch.device("meta"):
        model = instantiate(cfg.model)
    adapters = get_adapter_params(model)
    if adapters:
        set_trainable_params(model, adapters)
    if checkpointing:
        apply_activation_checkpointing(model)
    materialize(model, "cpu")
    _randomise(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = instantiate(cfg.optimizer, params)
    loss_fn = instantiate(cfg.loss)
    shape = (cfg.batch_size, cfg.tokenizer.max_seq_len)
    tokens = torch.randint(0, cfg.model.vocab_size, shape)
    labels = shift_labels(tokens)

    owned = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    mode = LiveStorages()
    with mode:
        loss = loss_fn(model(tokens), labels)
    activations = mode.live_bytes(exclude=owned)
    (loss / labels.numel()).backward()
    optimizer.step()
    return {
        "weights": sum(t.nbytes for t in (*model.parameters(), *model.buffers())),
        "gradients": sum(p.grad.nbytes for p in model.parameters() if p.grad is not None),
        "optimizer": sum(
            t.nbytes
            for state in optimizer.state.values()
            for t in state.values()
            if isinstance(t, torch.Tensor)
        ),
        "activations": activations,
    }


@torch.no_grad()
def _randomise(model: torch.nn.Module) -> None:
    """Small random weights (the recipe loads a checkpoint; memory does not depend on it)."""
    for name, param in model.named_parameters():
        if "lora_b" not in name:
            param.normal_(0, 0.02)
    for module in model.modules():
        if isinstance(module, NF4Weight):
            module.quantize_(torch.randn(module.shape) * 0.02)
