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
from torch.distributed.fsdp import FSDPModule
from torch.distributed.tensor import DTensor

from modeling.data import CROSS_ENTROPY_IGNORE_IDX
from modeling.modules.attention_masks import packed_attention_mask
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
from orchestrator.progress import header_record
from orchestrator.training.device_mesh import device_mesh
from orchestrator.training.loss import shift_labels
from orchestrator.training.meta_model import build_on_meta
from orchestrator.training.metric_logger import metric_logger_for
from orchestrator.training.outputs import write_outputs
from orchestrator.training.profiler import profiler_from_config
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
    offload = bool(cfg.get("fsdp_cpu_offload", False))
    # One CPU rank has nothing to shard: it runs unwrapped, as a single-device recipe does.
    if distributed and (session.world_size > 1 or on_gpu or offload):
        mesh = device_mesh(device, session.world_size, session.node_id, cfg.get("sharding"))
        shard_decoder(model, mesh=mesh, param_dtype=dtype if on_gpu else None, cpu_offload=offload)
    materialize(model, device, params_on_host=offload and isinstance(model, FSDPModule))
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
    scheduler = (  # torchtune's full fine-tune configs have none: a constant learning rate
        instantiate(cfg.lr_scheduler, optimizer, num_training_steps=plan.total_steps)
        if cfg.get("lr_scheduler") is not None
        else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    )
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
    logger = metric_logger_for(cfg) if session.rank == 0 else None
    if logger:
        logger.start(first_step=step + 1)
        session.progress(
            header_record(
                cfg,
                model,
                world_size=session.world_size,
                device=device.type,
                total_steps=plan.total_steps,
                first_step=step + 1,
            )
        )

    model.train()
    metrics: dict[str, Any] = {}
    batches = _batches(loader, plan, step)
    save_every = cfg.get("save_every_n_steps") or 0
    log_every = cfg.get("log_every_n_steps") or 1
    window = _Window()
    profiler = profiler_from_config(cfg.get("profiler"), session.rank)  # a no-op when disabled
    profiler.start()
    while step < plan.total_steps:
        step += 1
        micro = [next(batches) for _ in range(plan.grad_accum)]
        loss_sum, label_tokens, tokens = _accumulate(
            model, loss_fn, micro, device, session.world_size, defer_sync=is_lora
        )
        grad_norm = None
        if cfg.get("clip_grad_norm") is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, float(cfg.clip_grad_norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        profiler.step()
        window.add(tokens)
        saving = save_every and step % save_every == 0 and step < plan.total_steps
        if not (step % log_every == 0 or step == plan.total_steps or saving):
            continue  # no host sync on steps that are neither logged nor saved
        # The one host sync of a logged step: every rank joins the reductions.
        loss = (_all_reduce(loss_sum) / label_tokens.clamp(min=1)).item()
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"Loss is {loss} at step {step}; lower optimizer.lr, set clip_grad_norm, "
                f"or check the data for empty or corrupt samples"
            )
        metrics = {
            "step": step,
            "epoch": (step - 1) // plan.steps_per_epoch,
            "loss": loss,
            "lr": optimizer.param_groups[0]["lr"],
            **window.rates(),
            "peak_memory_gib": _peak_memory_gib(device),
            "total_steps": plan.total_steps,
        }
        if on_gpu:
            torch.cuda.reset_peak_memory_stats(device)  # the next window's peak is its own
        if grad_norm is not None:
            metrics["grad_norm"] = _scalar(grad_norm)
        if logger:
            logger.log(metrics)
            session.progress(metrics)
        if saving:
            extra = {"step": step, "scheduler": scheduler.state_dict(), "data": loader.state_dict()}
            if logger:
                logger.flush()
            _report_checkpoint(session, metrics, model, optimizer, extra, is_lora)

    profiler.stop()
    if logger:
        logger.close()
    write_outputs(cfg, model, checkpointer, tokenizer, session.rank, is_lora)
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


def _accumulate(
    model, loss_fn, micro_batches, device, world_size, *, defer_sync: bool
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Forward/backward over the micro-batches of one optimizer step, without a host sync.

    The summed loss is divided by the number of label tokens of the whole global batch
    (all micro-batches on all workers), and multiplied by the worker count to undo FSDP's
    gradient averaging, so the update is the same however the batch is split. Label
    tokens are counted on the host from the batches, before they move to the device.

    Gradients are reduced across ranks once, after the last micro-batch, when the
    trainable parameters are adapters (``defer_sync``, through FSDP2's
    ``set_requires_gradient_sync``): holding
    their unsharded gradients costs little. A full fine-tune reduces after every
    micro-batch, since deferring would hold the whole model's unsharded gradients.

    Returns:
        This rank's summed loss (on the device; not yet reduced), the global batch's
        label-token count (reduced, on the reduction device), and the input tokens of
        the global batch.
    """
    labels = [shift_labels(b["labels"]) for b in micro_batches]
    local_tokens = sum(int((lab != CROSS_ENTROPY_IGNORE_IDX).sum()) for lab in labels)
    global_tokens = _all_reduce(torch.tensor(float(local_tokens)))
    scale = (world_size / global_tokens.clamp(min=1)).to(device)
    defer_sync = defer_sync and isinstance(model, FSDPModule) and len(micro_batches) > 1
    total = torch.zeros((), dtype=torch.float32, device=device)
    input_tokens = 0
    chunks = getattr(loss_fn, "num_output_chunks", None)  # logits projected chunk by chunk
    for index, (batch, label) in enumerate(zip(micro_batches, labels, strict=True)):
        if defer_sync:
            model.set_requires_gradient_sync(index == len(micro_batches) - 1)
        tokens = batch["tokens"].to(device, non_blocking=True)
        label = label.to(device, non_blocking=True)
        input_tokens += tokens.numel()
        kwargs = {}
        if "document_ids" in batch:  # packed: one mask per batch, shared by every layer
            kwargs["mask"] = packed_attention_mask(batch["document_ids"].to(device))
            kwargs["input_pos"] = batch["input_pos"].to(device)
        scored = label != CROSS_ENTROPY_IGNORE_IDX  # logits only where a label takes loss
        logits = model(tokens, output_mask=scored, output_chunks=chunks, **kwargs)
        loss = loss_fn(logits, label[scored])
        (loss * scale).backward()
        total += loss.detach().float()
    return total, global_tokens, input_tokens * world_size


class _Window:
    """Tokens and wall time since the last logged step, for honest rates on any device.

    Read only after a host sync (the logged step's), so on a GPU the time covers the
    kernels the steps queued, not just their launches.
    """

    def __init__(self) -> None:
        self.tokens = 0
        self.steps = 0
        self.start = time.perf_counter()

    def add(self, tokens: int) -> None:
        """Count one optimizer step of ``tokens`` input tokens."""
        self.tokens += tokens
        self.steps += 1

    def rates(self) -> dict[str, float]:
        """Tokens per second and seconds per step over the window; then start a new one."""
        elapsed = time.perf_counter() - self.start
        rates = {
            "tokens_per_second": self.tokens / elapsed,
            "step_time_s": elapsed / max(self.steps, 1),
        }
        self.tokens, self.steps, self.start = 0, 0, time.perf_counter()
        return rates


def _scalar(value: torch.Tensor) -> float:
    """A reduced scalar on the host (a DTensor norm is gathered: every rank must call this)."""
    return (value.full_tensor() if isinstance(value, DTensor) else value).item()


def _all_reduce(value: torch.Tensor) -> torch.Tensor:
    """Sum ``value`` over ranks, on the reduction backend's device (no copy back to host)."""
    if dist.is_available() and dist.is_initialized():
        value = value.to("cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(value)
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
