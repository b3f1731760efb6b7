"""Count a config's model exactly by building it on the ``meta`` device.

Building on ``meta`` allocates nothing, so even a 70B model is counted in a second, and
the counts are those of the model the recipe trains: the same builder, the same LoRA
placement, the same NF4 buffers. The recipe's freezing rule is applied (only adapters
train when there are any), and each decoder layer is described by what the activation
model in :mod:`orchestrator.planning.planner` needs: the widths of its projections and which of them
train or hold an NF4 base.
"""

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from modeling.modules import TransformerDecoder
from modeling.peft import FrozenNF4Linear, LoRALinear, NF4Weight, get_adapter_params
from orchestrator.training.meta_model import build_on_meta

LINEARS = ("q_proj", "k_proj", "v_proj", "output_proj", "w1", "w2", "w3")


@dataclass(frozen=True)
class Linear:
    """One projection: its shape, whether it trains, its NF4-ness and LoRA rank."""

    in_dim: int
    out_dim: int
    trainable: bool
    nf4: bool
    lora_rank: int = 0

    @property
    def numel(self) -> int:
        """Elements of the (dense) base weight."""
        return self.in_dim * self.out_dim


@dataclass(frozen=True)
class LayerCensus:
    """What one decoder layer holds and computes."""

    linears: dict[str, Linear]
    num_heads: int
    norms_trainable: bool
    dense_bytes: int
    trainable_bytes: int
    nf4_bytes: int


@dataclass(frozen=True)
class ModelCensus:
    """Parameter and buffer bytes of a model, by class, plus its layer shapes.

    ``dense_bytes`` counts every parameter (trainable or frozen) in the run dtype: these
    are what FSDP2 shards. ``nf4_bytes`` (NF4 base buffers, whole model) are sharded by
    rows over the same shard group by ``modeling.sharding.shard_nf4_weights``;
    ``other_buffer_bytes`` (RoPE tables) stay whole on every rank.
    """

    param_bytes: int
    trainable_bytes: int
    trainable_tensors: int
    nf4_bytes: int
    other_buffer_bytes: int
    root_dense_bytes: int
    embed_dim: int
    vocab_size: int
    max_seq_len: int
    embeddings_trainable: bool
    output: Linear
    layers: list[LayerCensus]

    @property
    def frozen_bytes(self) -> int:
        """Dense frozen parameter bytes."""
        return self.param_bytes - self.trainable_bytes


def census(model_cfg: DictConfig, dtype: torch.dtype) -> ModelCensus:
    """Build ``model_cfg`` on ``meta`` in ``dtype`` and count it as the recipe would train it."""
    model = build_on_meta(model_cfg, dtype)
    if not isinstance(model, TransformerDecoder):
        raise ValueError(
            f"model._component_ {model_cfg.get('_component_')!r} built a "
            f"{type(model).__name__}, not a decoder the planner can count; use a "
            f"modeling.<family> builder"
        )
    adapters = get_adapter_params(model)
    trainable = {id(p) for p in (adapters.values() if adapters else model.parameters())}
    nf4_ids = {id(b) for m in model.modules() if isinstance(m, NF4Weight) for b in m.buffers()}
    nf4_bytes = sum(m.nbytes() for m in model.modules() if isinstance(m, NF4Weight))
    buffers = sum(b.nbytes for b in model.buffers() if id(b) not in nf4_ids)
    params = list(model.parameters())
    layer_params = {id(p) for layer in model.layers for p in layer.parameters()}
    output = model.output if model.output is not None else model.tok_embeddings
    return ModelCensus(
        param_bytes=sum(p.nbytes for p in params),
        trainable_bytes=sum(p.nbytes for p in params if id(p) in trainable),
        trainable_tensors=sum(1 for p in params if id(p) in trainable),
        nf4_bytes=nf4_bytes,
        other_buffer_bytes=buffers,
        root_dense_bytes=sum(p.nbytes for p in params if id(p) not in layer_params),
        embed_dim=model.tok_embeddings.embedding_dim,
        vocab_size=model.tok_embeddings.num_embeddings,
        max_seq_len=model.max_seq_len,
        embeddings_trainable=id(model.tok_embeddings.weight) in trainable,
        output=_linear(output, trainable),
        layers=[_layer(layer, trainable) for layer in model.layers],
    )


def _layer(layer: nn.Module, trainable: set[int]) -> LayerCensus:
    modules = {
        **{n: getattr(layer.attn, n) for n in LINEARS[:4]},
        **{n: getattr(layer.mlp, n) for n in LINEARS[4:]},
    }
    params = list(layer.parameters())
    return LayerCensus(
        linears={name: _linear(m, trainable) for name, m in modules.items()},
        num_heads=layer.attn.num_heads,
        norms_trainable=id(layer.sa_norm.scale) in trainable,
        dense_bytes=sum(p.nbytes for p in params),
        trainable_bytes=sum(p.nbytes for p in params if id(p) in trainable),
        nf4_bytes=sum(m.nbytes() for m in layer.modules() if isinstance(m, NF4Weight)),
    )


def _linear(module: nn.Module, trainable: set[int]) -> Linear:
    """Shape and roles of a projection (``nn.Linear``, LoRA, frozen NF4, or an embedding)."""
    trains = any(id(p) in trainable for p in module.parameters())
    if isinstance(module, LoRALinear):
        nf4 = isinstance(module.weight, NF4Weight)
        return Linear(module.in_dim, module.out_dim, trains, nf4, module.rank)
    if isinstance(module, FrozenNF4Linear):
        return Linear(module.in_dim, module.out_dim, False, True)
    if isinstance(module, nn.Embedding):  # tied output projection (Gemma)
        return Linear(module.embedding_dim, module.num_embeddings, trains, False)
    return Linear(module.in_features, module.out_features, trains, False)
