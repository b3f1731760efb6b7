"""Build a config's model on the ``meta`` device: the recipe's first step, and the planner's."""

import torch
from omegaconf import DictConfig
from torch import nn


def build_on_meta(model_cfg: DictConfig, dtype: torch.dtype) -> nn.Module:
    """Instantiate ``model_cfg`` on ``meta`` with ``dtype`` as the default dtype.

    Nothing is allocated, so even a 70B model builds in a second; parameters get their
    storage later (``materialize``) on the device the rank trains on. The recipe and
    ``tune plan`` both build through here, so the planner counts the model the recipe
    trains.
    """
    from orchestrator.config import instantiate

    previous = torch.get_default_dtype()
    with torch.device("meta"):
        torch.set_default_dtype(dtype)
        try:
            return instantiate(model_cfg)
        finally:
            torch.set_default_dtype(previous)
