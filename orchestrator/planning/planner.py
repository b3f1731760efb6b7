"""Per-GPU memory of a fine-tune before launching it: ``tune plan``.

Pure computation on a config: the model is counted on the ``meta`` device
(:mod:`orchestrator.planning.model_census`), activations follow our decoder op by op
(:mod:`orchestrator.planning.activation_memory`), and the rest follows the recipe
(``orchestrator/recipes/finetune.py``):

- Parameters are stored in the run dtype (bf16 on GPU, float32 on CPU); FSDP2 shards every
  parameter, trainable or frozen, over the shard group: all ranks (FSDP) or one node's
  GPUs (HSDP, replicated across nodes). NF4 base weights (0.5625 bytes per base
  parameter) are buffers, which FSDP2 does not shard; ``modeling.sharding`` shards them by
  rows over the same shard group, and each projection is gathered only while it is used.
  Under ``fsdp_cpu_offload`` the sharded parameters and the NF4 rows live in host memory
  and are copied to the GPU for their gathers.
- Gradients exist for trainable parameters only, sharded, in the parameter dtype.
- ``torch.optim.AdamW`` keeps two moments per trainable parameter *in the parameter
  dtype* (no float32 master copy: the recipe has none) plus a step count per tensor.
- FSDP2 temporaries: the root module's parameters (embeddings, output) stay gathered from
  forward to the end of backward; two layers are gathered at once (current + prefetch);
  the largest layer's gradients are reduced in float32. Counted on GPU (the recipe always
  runs FSDP2 under Ray Train) and on CPU with more than one rank.

Temporaries (logits, recompute, FSDP2 buffers, the gathered NF4 projection) do not all
peak at the same moment; summing them errs on the safe side.

A plan *fits* when its total is at most 90% of the device's memory. The 10% headroom
covers what no formula here sees: the CUDA context and kernels (0.5-1 GiB), the caching
allocator's fragmentation, NCCL's buffers, and the batch that pads to a longer length.
"""

from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig

from orchestrator.planning import activation_memory as act
from orchestrator.planning.gpus import GIB, Accelerator, accelerator
from orchestrator.planning.model_census import ModelCensus, census
from orchestrator.training.device_mesh import SHARDINGS

HEADROOM = 0.10
OPTIMIZER_STATES = {"AdamW": 2, "Adam": 2}


@dataclass(frozen=True)
class Row:
    """One component: bytes per GPU without and with activation checkpointing."""

    name: str
    without_ac: int
    with_ac: int
    note: str = ""
    on_host: bool = False  # offloaded (fsdp_cpu_offload): host memory, not the GPU's


@dataclass
class MemoryPlan:
    """The per-GPU memory of one config on one cluster shape, by component."""

    config: str
    method: str
    params: int
    trainable_params: int
    nodes: int
    gpus_per_node: int
    sharding: str
    shard_size: int
    device: Accelerator
    dtype: str
    batch_size: int
    seq_len: int
    seq_len_source: str
    config_uses_ac: bool
    rows: list[Row]
    cpu_offload: bool = False
    notes: list[str] = field(default_factory=list)

    def total(self, checkpointing: bool) -> int:
        """Bytes per GPU, all components summed (what lives on the host is not counted)."""
        return sum(r.with_ac if checkpointing else r.without_ac for r in self.rows if not r.on_host)

    def host_bytes_per_node(self) -> int:
        """Host memory the node's ranks hold for offloaded state (0 without offload)."""
        return self.gpus_per_node * sum(r.with_ac for r in self.rows if r.on_host)

    @property
    def usable_bytes(self) -> int:
        """Device memory less the headroom."""
        return int(self.device.capacity_bytes * (1 - HEADROOM))

    def fits(self, checkpointing: bool | None = None) -> bool:
        """Whether the total fits in the usable memory (the config's own AC setting if None)."""
        ac = self.config_uses_ac if checkpointing is None else checkpointing
        return self.total(ac) <= self.usable_bytes

    def row(self, name: str) -> Row:
        """The row called ``name``."""
        return next(r for r in self.rows if r.name == name)


def plan_memory(
    cfg: DictConfig,
    *,
    nodes: int,
    gpus_per_node: int,
    gpu: str = "h100-80gb",
    sharding: str | None = None,
    seq_len: int | None = None,
    config_name: str = "",
) -> MemoryPlan:
    """Plan the per-GPU memory of fine-tuning ``cfg`` on ``nodes`` x ``gpus_per_node``.

    Args:
        cfg: A loaded recipe config (``orchestrator.config.load_config``).
        nodes: Nodes in the cluster.
        gpus_per_node: GPUs (ranks) per node.
        gpu: Accelerator name (see :mod:`orchestrator.planning.gpus`), or ``cpu``.
        sharding: ``fsdp`` (shard over all ranks) or ``hsdp`` (shard within a node,
            replicate across nodes); by default what the recipe does: HSDP when the job
            spans several nodes, FSDP on one.
        seq_len: Padded tokens per sample; the longest the config allows when None.
        config_name: Shown in the table.

    Raises:
        ValueError: Naming the bad value and the fix.
    """
    device = accelerator(gpu)
    for name, value in (("--nodes", nodes), ("--gpus-per-node", gpus_per_node)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    sharding = sharding or cfg.get("sharding") or ("hsdp" if nodes > 1 else "fsdp")
    if sharding not in SHARDINGS:
        raise ValueError(
            f"--sharding (or the config's sharding) must be one of {', '.join(SHARDINGS)}, "
            f"got {sharding!r}"
        )
    offload = bool(cfg.get("fsdp_cpu_offload", False))
    dtype_name = str(cfg.get("dtype", "bf16"))
    if dtype_name not in ("bf16", "fp32"):
        raise ValueError(f"dtype must be bf16 or fp32, got {dtype_name!r}; set dtype=bf16")
    dtype = torch.bfloat16 if dtype_name == "bf16" and device.kind == "cuda" else torch.float32
    model = census(cfg.model, dtype)
    shape = _step_shape(cfg, model, device, dtype, seq_len)
    world = nodes * gpus_per_node
    shard = world if sharding == "fsdp" else gpus_per_node
    fsdp = device.kind == "cuda" or world > 1
    offload = offload and fsdp  # planned only where the plan shards with FSDP
    rows = _rows(cfg, model, shape, shard, fsdp=fsdp, offload=offload)
    plan = MemoryPlan(
        config=config_name,
        method="QLoRA" if model.nf4_bytes else "LoRA" if model.frozen_bytes else "full",
        params=_numel(model, dtype),
        trainable_params=model.trainable_bytes // dtype.itemsize,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        sharding=sharding,
        shard_size=shard,
        device=device,
        dtype="bf16" if dtype == torch.bfloat16 else "fp32",
        batch_size=shape.batch_size,
        seq_len=shape.seq_len,
        seq_len_source=_seq_len_source(cfg, model, seq_len),
        config_uses_ac=bool(cfg.get("enable_activation_checkpointing", False)),
        rows=rows,
        cpu_offload=offload,
    )
    plan.notes.extend(_notes(cfg, model, plan))
    return plan


def _step_shape(cfg, model: ModelCensus, device, dtype, seq_len) -> act.StepShape:
    batch = int(cfg.get("batch_size", 1))
    if batch < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch}")
    packed = bool(cfg.get("dataset", {}).get("packed", False))
    tok_len = cfg.get("tokenizer", {}).get("max_seq_len")
    if packed and tok_len is None and seq_len is None:
        raise ValueError("dataset.packed=True needs tokenizer.max_seq_len: set it, e.g. 2048")
    length = seq_len or min(int(tok_len or model.max_seq_len), model.max_seq_len)
    if not 1 <= length <= model.max_seq_len:
        raise ValueError(
            f"--seq-len {length} is outside 1..{model.max_seq_len} (the model's max_seq_len, "
            f"beyond which the recipe truncates); pass a length in that range"
        )
    kind = device.kind
    return act.StepShape(batch, length, dtype.itemsize, kind, packed=packed)


def _rows(
    cfg, model: ModelCensus, shape: act.StepShape, shard: int, fsdp: bool, offload: bool
) -> list[Row]:
    """The components of one rank's memory; with ``offload`` the sharded state is on the host.

    FSDP2's ``CPUOffloadPolicy`` keeps sharded parameters, their gradients and the
    optimizer state in host memory, and ``modeling.sharding`` keeps the NF4 bases' rows
    there too (``NF4Weight.offload_``): the GPU holds only what is gathered for compute,
    including the NF4 projection being dequantised (its row, "NF4 dequant temp").
    """
    states = _optimizer_states(cfg)
    trainable, frozen = model.trainable_bytes // shard, model.frozen_bytes // shard
    nf4 = model.nf4_bytes // shard
    chunks = int(cfg.get("loss", {}).get("num_output_chunks", 8) or 8)
    p = shape.compute_bytes
    gather = 0
    if fsdp:
        biggest = max(model.layers, key=lambda layer: layer.dense_bytes)
        reduce_grads = biggest.trainable_bytes // p * (p + act.FP32)
        gather = model.root_dense_bytes + 2 * biggest.dense_bytes + reduce_grads
    where = "host, " if offload else ""
    rows = [
        Row("weights: trainable", trainable, trainable, f"{where}sharded 1/{shard}", offload),
        Row("weights: frozen", frozen, frozen, f"{where}sharded 1/{shard}", offload),
        Row("weights: NF4 base", nf4, nf4, f"{where}sharded 1/{shard} by rows", offload),
        Row("buffers: RoPE", model.other_buffer_bytes, model.other_buffer_bytes, "not sharded"),
        Row("gradients", trainable, trainable, f"{where}trainable only", offload),
        Row(
            "optimizer state",
            states * trainable + act.FP32 * model.trainable_tensors,
            states * trainable + act.FP32 * model.trainable_tensors,
            f"{where}{states} moments in param dtype",
            offload,
        ),
        Row(
            "activations",
            act.saved_activations(model, shape, checkpointing=False),
            act.saved_activations(model, shape, checkpointing=True),
            "saved for backward",
        ),
        Row("AC recompute (1 layer)", 0, act.recompute_bytes(model, shape), "in backward"),
        Row("logits / loss temp", *[act.logits_bytes(model, shape, chunks)] * 2, "transient"),
        Row("NF4 dequant temp", *[act.dequant_bytes(model, shape)] * 2, "transient"),
        Row("FSDP2 gather/reduce", gather, gather, "root + 2 layers gathered"),
    ]
    return rows


def _optimizer_states(cfg) -> int:
    component = str(cfg.get("optimizer", {}).get("_component_", "torch.optim.AdamW"))
    short = component.rsplit(".", 1)[-1]
    if short == "SGD":
        return 1 if float(cfg.optimizer.get("momentum", 0) or 0) else 0
    return OPTIMIZER_STATES.get(short, 2)


def _numel(model: ModelCensus, dtype: torch.dtype) -> int:
    nf4_numel = sum(m.numel for layer in model.layers for m in layer.linears.values() if m.nf4)
    nf4_numel += model.output.numel if model.output.nf4 else 0
    return model.param_bytes // dtype.itemsize + nf4_numel


def _seq_len_source(cfg, model: ModelCensus, seq_len: int | None) -> str:
    if seq_len:
        return "--seq-len"
    if cfg.get("tokenizer", {}).get("max_seq_len") is not None:
        return "tokenizer.max_seq_len"
    return "the model's max_seq_len, as tokenizer.max_seq_len is unset"


def _notes(cfg, model: ModelCensus, plan: MemoryPlan) -> list[str]:
    notes = []
    if model.nf4_bytes and plan.shard_size > 1:
        notes.append(
            "NF4 base weights are sharded by rows over the shard group; each projection is "
            "gathered and dequantised when used, in forward and again in backward."
        )
    if model.nf4_bytes and plan.cpu_offload:
        notes.append(
            "With fsdp_cpu_offload the NF4 rows stay in host memory (pinned); each "
            "projection's rows are copied to the GPU for its gather and freed after use."
        )
    short = str(cfg.get("optimizer", {}).get("_component_", "")).rsplit(".", 1)[-1]
    if short and short not in (*OPTIMIZER_STATES, "SGD"):
        notes.append(f"Optimizer {short}: assumed to keep 2 states per trainable parameter.")
    if plan.seq_len_source.startswith("the model"):
        notes.append("Pass --seq-len (your longest sample) or tokenizer.max_seq_len to plan less.")
    if (
        model.layers
        and any(
            m.lora_rank and m.trainable for layer in model.layers for m in layer.linears.values()
        )
        and float(cfg.model.get("lora_dropout", 0) or 0) > 0
    ):
        notes.append("lora_dropout > 0 keeps a dropout mask per adapter, not counted here.")
    return notes


def render_table(plan: MemoryPlan) -> str:
    """The plan as a plain-text table for the terminal."""
    ranks = plan.nodes * plan.gpus_per_node
    head = [
        f"Memory plan: {plan.config or 'config'} ({plan.method}, {plan.params / 1e9:.2f}B params, "
        f"{plan.trainable_params / 1e6:.1f}M trainable)",
        f"Cluster: {plan.nodes} node(s) x {plan.gpus_per_node} {plan.device.name} = {ranks} "
        f"rank(s), {plan.sharding.upper()} shard group {plan.shard_size}",
        f"Per rank: batch {plan.batch_size} x {plan.seq_len} tokens ({plan.seq_len_source}), "
        f"{plan.dtype}",
        "",
    ]
    width = max(len(r.name) for r in plan.rows) + 2
    lines = [f"{'component':<{width}}{'no AC GiB':>11}{'AC GiB':>10}  note"]
    lines.append("-" * (width + 21 + 28))
    for r in plan.rows:
        lines.append(f"{r.name:<{width}}{_gib(r.without_ac):>11}{_gib(r.with_ac):>10}  {r.note}")
    lines.append("-" * (width + 21 + 28))
    cap = plan.device.capacity_bytes
    lines.append(f"{'total':<{width}}{_gib(plan.total(False)):>11}{_gib(plan.total(True)):>10}")
    lines.append(f"{'GPU capacity':<{width}}{_gib(cap):>11}{_gib(cap):>10}")
    usable = plan.usable_bytes
    lines.append(f"{'usable (90%)':<{width}}{_gib(usable):>11}{_gib(usable):>10}")
    yes = {True: "yes", False: "NO"}
    lines.append(f"{'fits':<{width}}{yes[plan.fits(False)]:>11}{yes[plan.fits(True)]:>10}")
    if plan.cpu_offload:
        host = plan.host_bytes_per_node()
        lines.append(f"{'host per node':<{width}}{_gib(host):>11}{_gib(host):>10}  offloaded")
    ac = "on" if plan.config_uses_ac else "off"
    verdict = "fits" if plan.fits() else "DOES NOT FIT"
    tail = ["", f"With the config's activation checkpointing ({ac}): {verdict}."]
    if not plan.fits() and plan.fits(not plan.config_uses_ac):
        tail.append(f"It fits with enable_activation_checkpointing={not plan.config_uses_ac}.")
    tail += [f"Note: {n}" for n in plan.notes]
    tail.append("Fits = total <= 90% of capacity (headroom: CUDA context, fragmentation, NCCL).")
    return "\n".join(head + lines + tail)


def _gib(n: int) -> str:
    return f"{n / GIB:.2f}"
