"""Learning-rate schedules."""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def get_cosine_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
) -> LambdaLR:
    """Linear warmup from 0 to the optimizer's lr, then cosine decay to 0.

    The same schedule as torchtune's and transformers' function of this name, so configs
    carry over with the same learning-rate curve.

    Args:
        optimizer: The optimizer whose learning rate is scheduled.
        num_warmup_steps: Optimizer steps of linear warmup.
        num_training_steps: Total optimizer steps (the recipe fills this in).
        num_cycles: Cosine half-waves over the decay (0.5 decays once to zero).
        last_epoch: The index of the last step when resuming (-1 to start fresh).
    """
    if num_warmup_steps < 0:
        raise ValueError(f"num_warmup_steps must be >= 0, got {num_warmup_steps}")

    def factor(step: int) -> float:
        if step < num_warmup_steps:
            return step / max(1, num_warmup_steps)
        progress = (step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress)))

    return LambdaLR(optimizer, factor, last_epoch)
