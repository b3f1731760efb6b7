"""What the driver checks before any worker starts, so that no run trains on the wrong thing.

Each check reads only what is cheap to read where the driver runs: settings that need
only the config (the sharding layout, the optimizer's arguments), and, when the driver
can read the run's inputs, the checkpoint's ``config.json``/``params.json`` against the
model the config builds (on ``meta``), the tokenizer's vocabulary against the model's
embedding rows, and the dataset's label tokens after truncation. Each failure names both
sides and the key to change.
"""

import warnings

import torch
from omegaconf import DictConfig
from torch import nn

from modeling.checkpointing import Checkpointer
from modeling.data import CROSS_ENTROPY_IGNORE_IDX
from orchestrator.training.device_mesh import check_sharding
from orchestrator.training.meta_model import build_on_meta


def check_settings(cfg: DictConfig) -> None:
    """The checks that need only the config: run for every launch, local or remote.

    Raises:
        ValueError: Naming the setting and the fix.
    """
    check_sharding(cfg.get("sharding"))
    check_optimizer(cfg)


def check_run_inputs(cfg: DictConfig) -> None:
    """The input checks below, on a resolved config whose inputs the driver can read.

    Raises:
        ValueError: Naming the sizes, vocabularies or data that do not fit together.
    """
    from orchestrator.config import instantiate

    checkpointer = require_checkpointer(instantiate(cfg.checkpointer), cfg)
    model = build_on_meta(cfg.model, torch.float32)
    checkpointer.check_model(model)
    tokenizer = instantiate(cfg.tokenizer)
    check_vocabularies(tokenizer, model)
    if tokenizer.max_seq_len is None or tokenizer.max_seq_len > model.max_seq_len:
        tokenizer.max_seq_len = model.max_seq_len  # as the recipe caps it
    check_labels(instantiate(cfg.dataset, tokenizer), tokenizer.max_seq_len)


def require_checkpointer(checkpointer, cfg: DictConfig) -> Checkpointer:
    """``checkpointer``, checked to implement the checkpointer protocol.

    Raises:
        ValueError: Naming the component that built something else.
    """
    if not isinstance(checkpointer, Checkpointer):
        raise ValueError(
            f"checkpointer._component_ {cfg.checkpointer.get('_component_')!r} built a "
            f"{type(checkpointer).__name__}, not a checkpointer; use FullModelHFCheckpointer "
            f"or FullModelMetaCheckpointer"
        )
    return checkpointer


def check_vocabularies(tokenizer, model: nn.Module) -> None:
    """Every id the tokenizer can produce must have an embedding row in the model.

    Raises:
        ValueError: Naming both sizes and the keys to change.
    """
    rows = model.tok_embeddings.num_embeddings
    if tokenizer.vocab_size > rows:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocab_size} tokens but the model has only {rows} "
            f"embedding rows (model.vocab_size): ids past {rows - 1} would fail. Use the "
            f"model's own tokenizer (tokenizer.path) or set model.vocab_size to at least "
            f"{tokenizer.vocab_size}"
        )


def check_labels(dataset, max_seq_len: int | None) -> None:
    """Stop when no sample keeps a label token after truncation; warn when some lose all.

    Raises:
        ValueError: When nothing would be trained, with the sample count and the limit.
    """
    empty = sum(
        1
        for index in range(len(dataset))
        if all(label == CROSS_ENTROPY_IGNORE_IDX for label in dataset[index]["labels"])
    )
    if empty and empty == len(dataset):
        raise ValueError(
            f"None of the {len(dataset)} samples keeps a label token after truncation to "
            f"max_seq_len={max_seq_len}: the loss would be 0 and nothing trained. Raise "
            f"tokenizer.max_seq_len (and model.max_seq_len), or shorten the prompts"
        )
    if empty:
        warnings.warn(
            f"{empty} of {len(dataset)} samples keep no label token after truncation to "
            f"max_seq_len={max_seq_len} and will not train; raise tokenizer.max_seq_len to "
            f"keep them",
            UserWarning,
            stacklevel=2,
        )


def check_optimizer(cfg: DictConfig) -> None:
    """Build the optimizer over one stand-in parameter, so that a bad setting fails here.

    torch checks ``lr``, ``betas``, ``eps`` and ``weight_decay`` when an optimizer is made;
    made only in the workers, a negative learning rate would cost a cluster start first.

    Raises:
        ValueError: Naming the optimizer and torch's reason.
    """
    from orchestrator.config import instantiate

    if cfg.get("optimizer") is None:
        return
    try:
        instantiate(cfg.optimizer, [nn.Parameter(torch.zeros(1))])
    except ValueError as err:
        raise ValueError(
            f"optimizer {cfg.optimizer.get('_component_')!r}: {err}; fix that setting "
            f"of the optimizer section (optimizer.lr=..., optimizer.betas=...)"
        ) from None
