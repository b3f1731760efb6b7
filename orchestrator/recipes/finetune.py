"""The fine-tuning recipe: one plain function that every Ray Train worker runs.

Full, LoRA and QLoRA fine-tuning share it: the model builder decides which parameters
are adapters. The order follows torchtune's distributed recipes: build on ``meta``,
freeze, activation checkpointing, FSDP2, materialise, stream the base weights into the
shards, assert nothing is left on ``meta``; then train, checkpoint every N steps through
the session, and finally write the PEFT adapter and the merged Hugging Face model.
"""

import math
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch.distributed.tensor import DTensor

from modeling.data import CROSS_ENTROPY_IGNORE_IDX
from modeling.peft import get_adapter_params, set_trainable_params
from modeling.sharding import (
    apply_activation_checkpointing,
    assert_nothing_on_meta,
    materialize,
    shard_decoder,
)
from orchestrator.datasets import ShardedSampler, StatefulDataLoader
from orchestrator.datasets.collate import padded_collate_packed, padded_collate_sft
from orchestrator.preflight import require_checkpointer
from orchestrator.training.device_mesh import device_mesh
from orchestrator.training.loss import shift_labels
from orchestrator.training.meta_model import build_on_meta
from orchestrator.training.metric_logger import MetricLogger
from orchestrator.training.outputs import write_outputs
from orchestrator.training.session import Session
from orchestrator.training.train_state import load_train_state, save_train_state


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops rather than corrupt the weights."""


@dataclass
class Plan:
    """How many steps the run takes, derived once from the data and the config."""

    steps_per_epoch: int
    epochs: int
    grad_accum: int

    @property
    def total_steps(self) -> int:
        """Optimizer steps over all epochs."""
        return self.steps_per_epoch * self.epochs


def finetune(config: dict | DictConfig, session: Session) -> dict[str, Any]:
    """Run one worker's share of a fine-tune; return the final metrics (rank 0 writes outputs).

    Args:
        config: The resolved recipe config (see ``orchestrator/configs``).
        session: Rank, device, reporting and the checkpoint to resume from.
    """
    from orchestrator.config import instantiate

    cfg = config if isinstance(config, DictConfig) else OmegaConf.create(config)
    device = session.device
    on_gpu = device.type == "cuda"
    dtype = torch.bfloat16 if on_gpu and cfg.get("dtype", "bf16") == "bf16" else torch.float32
    torch.manual_seed(cfg.get("seed") or 0)
    distributed = dist.is_available() and dist.is_initialized()

    # Model: meta device, freeze, activation checkpointing, shard, materialise, load.
    tokenizer = instantiate(cfg.tokenizer)
    model = build_on_meta(cfg.model, dtype)
    if tokenizer.max_seq_len is None or tokenizer.max_seq_len > model.max_seq_len:
        tokenizer.max_seq_len = model.max_seq_len  # never feed the model more than it covers
    adapters = get_adapter_params(model)
    is_lora = bool(adapters)
    if is_lora:
        set_trainable_params(model, adapters)
    if cfg.get("enable_activation_checkpointing", False):
        apply_activation_checkpointing(model)
    if distributed:
        mesh = device_mesh(device, session.world_size, session.node_id)
        shard_decoder(model, mesh=mesh, param_dtype=dtype if on_gpu else None)
    materialize(model, device)
    checkpointer = require_checkpointer(instantiate(cfg.checkpointer), cfg)
    checkpointer.load_into(model)  # each rank reads only the rows its shards own
    assert_nothing_on_meta(model)
    if cfg.get("compile", False):
        for layer in model.layers:
            layer.compile()

    # Data: tokenise, shard per rank, batch.
    dataset = instantiate(cfg.dataset, tokenizer)
    packed = bool(cfg.dataset.get("packed", False))
    collate = (
        padded_collate_packed
        if packed
        else partial(
            padded_collate_sft, padding_idx=tokenizer.pad_id, ignore_idx=CROSS_ENTROPY_IGNORE_IDX
        )
    )
    sampler = ShardedSampler(
        len(dataset),
        rank=session.rank,
        world_size=session.world_size,
        seed=cfg.get("seed") or 0,
        shuffle=cfg.get("shuffle", True),
    )
    loader = StatefulDataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate, drop_last=True
    )
    plan = _plan(cfg, len(loader))

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = instantiate(cfg.optimizer, params)
    scheduler = instantiate(cfg.lr_scheduler, optimizer, num_training_steps=plan.total_steps)
    loss_fn = instantiate(cfg.loss)

    step = 0
    resume = session.latest_checkpoint()
    if resume is not None:
        extra = load_train_state(
            resume, model=model, optimizer=optimizer, rank=session.rank, trainable_only=is_lora
        )
        step = extra["step"]
        scheduler.load_state_dict(extra["scheduler"])
        loader.load_state_dict(extra["data"])
    logger = MetricLogger(cfg.output_dir) if session.rank == 0 else None
    if logger:
        logger.start(first_step=step + 1)

    model.train()
    metrics: dict[str, Any] = {}
    batches = _batches(loader, plan, step)
    save_every = cfg.get("save_every_n_steps") or 0
    while step < plan.total_steps:
        step += 1
        start = time.perf_counter()
        if on_gpu:
            torch.cuda.reset_peak_memory_stats(device)
        micro = [next(batches) for _ in range(plan.grad_accum)]
        loss_sum, tokens = _accumulate(model, loss_fn, micro, device, session.world_size)
        if not math.isfinite(loss_sum):
            raise NonFiniteLossError(
                f"Loss is {loss_sum} at step {step}; lower optimizer.lr, set clip_grad_norm, "
                f"or check the data for empty or corrupt samples"
            )
        grad_norm = None
        if cfg.get("clip_grad_norm") is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, float(cfg.clip_grad_norm))
            grad_norm = (
                grad_norm.full_tensor() if isinstance(grad_norm, DTensor) else grad_norm
            ).item()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        elapsed = time.perf_counter() - start
        metrics = {
            "step": step,
            "epoch": (step - 1) // plan.steps_per_epoch,
            "loss": loss_sum,
            "lr": optimizer.param_groups[0]["lr"],
            "tokens_per_second": tokens / elapsed,
            "step_time_s": elapsed,
            "peak_memory_gib": _peak_memory_gib(device),
            "total_steps": plan.total_steps,
        }
        if grad_norm is not None:
            metrics["grad_norm"] = grad_norm
        if logger and (step % cfg.get("log_every_n_steps", 1) == 0 or step == plan.total_steps):
            logger.log(metrics)
            session.progress(metrics)
        if save_every and step % save_every == 0 and step < plan.total_steps:
            extra = {"step": step, "scheduler": scheduler.state_dict(), "data": loader.state_dict()}
            if logger:
                logger.flush()
            _report_checkpoint(session, metrics, model, optimizer, extra, is_lora)

    if logger:
        logger.flush()
    write_outputs(cfg, model, checkpointer, session.rank, is_lora)
    return metrics


def _plan(cfg: DictConfig, batches_per_epoch: int) -> Plan:
    grad_accum = int(cfg.get("gradient_accumulation_steps", 1))
    steps = batches_per_epoch // grad_accum
    if cfg.get("max_steps_per_epoch"):
        steps = min(steps, int(cfg.max_steps_per_epoch))
    if steps < 1:
        raise ValueError(
            f"The dataset gives {batches_per_epoch} batches per worker per epoch, fewer than "
            f"gradient_accumulation_steps={grad_accum}: lower batch_size, "
            f"gradient_accumulation_steps or the number of workers"
        )
    return Plan(steps_per_epoch=steps, epochs=int(cfg.get("epochs", 1)), grad_accum=grad_accum)


def _batches(loader: StatefulDataLoader, plan: Plan, done_steps: int):
    """Batches in order from the loader's (possibly restored) position, epoch after epoch.

    An epoch ends after ``steps_per_epoch`` optimizer steps even if the loader has more
    batches, so that ``max_steps_per_epoch`` runs resume at the same place.
    """
    per_epoch = plan.steps_per_epoch * plan.grad_accum
    epoch = done_steps // plan.steps_per_epoch
    taken = (done_steps % plan.steps_per_epoch) * plan.grad_accum
    while True:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            if taken == per_epoch:
                break
            taken += 1
            yield batch
        epoch, taken = epoch + 1, 0


def _accumulate(model, loss_fn, micro_batches, device, world_size) -> tuple[float, int]:
    """Forward/backward over the micro-batches of one optimizer step.

    The summed loss is divided by the number of label tokens of the whole global batch
    (all micro-batches on all workers), and multiplied by the worker count to undo FSDP's
    gradient averaging, so the update is the same however the batch is split.
    """
    labels = [shift_labels(b["labels"]).to(device) for b in micro_batches]
    local_tokens = torch.tensor(
        float(sum((lab != CROSS_ENTROPY_IGNORE_IDX).sum() for lab in labels))
    )
    global_tokens = _all_reduce(local_tokens.clone())
    total = torch.zeros((), dtype=torch.float32)
    input_tokens = 0
    for batch, label in zip(micro_batches, labels, strict=True):
        tokens = batch["tokens"].to(device)
        input_tokens += tokens.numel()
        kwargs = {k: batch[k].to(device) for k in ("mask", "input_pos") if k in batch}
        scored = label != CROSS_ENTROPY_IGNORE_IDX  # logits only where a label takes loss
        loss = loss_fn(model(tokens, output_mask=scored, **kwargs), label[scored])
        (loss * world_size / global_tokens.clamp(min=1)).backward()
        total += loss.detach().float().cpu()
    return (_all_reduce(total) / global_tokens.clamp(min=1)).item(), input_tokens * world_size


def _all_reduce(value: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        moved = value.to(backend_device)
        dist.all_reduce(moved)
        return moved.cpu()
    return value


def _peak_memory_gib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    except ImportError:  # pragma: no cover - not on Linux
        return None


def _report_checkpoint(session, metrics, model, optimizer, extra, is_lora) -> None:
    with tempfile.TemporaryDirectory(prefix="tunefleet-ckpt-") as tmp:
        directory = Path(tmp) / "checkpoint"
        directory.mkdir()
        save_train_state(
            directory,
            model=model,
            optimizer=optimizer,
            extra=extra,
            rank=session.rank,
            trainable_only=is_lora,
        )
        session.report(metrics, checkpoint_dir=directory)
