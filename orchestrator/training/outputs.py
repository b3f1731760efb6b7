"""What a finished run leaves behind: the PEFT adapter and the merged model."""

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch.distributed.tensor import DTensor

from modeling.builders import LORA_OPTIONS
from modeling.checkpointing import FullModelHFCheckpointer, merge_adapter
from modeling.checkpointing.hf_checkpointer import save_adapter
from modeling.convert import HeadDims, KeyMapper
from modeling.peft import ADAPTER_SUFFIXES, LoRALinear, get_adapter_params, merge_state_dict
from orchestrator.training.metric_logger import LOSS_CURVE_FILE, METRICS_FILE, plot_loss_curve

ADAPTER_DIR, MERGED_DIR = "adapter", "merged"
LORA_KEYS = ("lora_attn_modules", *LORA_OPTIONS)  # every keyword a lora_ builder adds


def write_outputs(cfg: DictConfig, model, checkpointer, rank: int, is_lora: bool) -> None:
    """Rank 0 writes ``adapter/`` (LoRA) and ``merged/``; every rank joins the gathers.

    From a Hugging Face base, LoRA runs gather only the adapters and merge them into the
    base files shard by shard (``tune merge``). Full fine-tunes, and Meta-format bases
    (whose merged output is Meta's one-file format), gather the whole state dict on rank 0.
    """
    output_dir = Path(cfg.output_dir)
    hf_base = isinstance(checkpointer, FullModelHFCheckpointer)
    if is_lora and hf_base:
        adapters = {k: _full(v) for k, v in get_adapter_params(model).items()}
        if rank == 0:
            checkpointer.save_checkpoint(
                None, adapter_weights=adapters, adapter_config=_lora_config(cfg, model)
            )
            merge_adapter(
                checkpointer.checkpoint_dir,
                output_dir / ADAPTER_DIR,
                output_dir / MERGED_DIR,
                max_shard_size=cfg.get("max_shard_size"),
            )
    else:
        state = {k: _full(v) for k, v in model.state_dict().items()}
        if rank == 0 and is_lora:
            attn = model.layers[0].attn
            mapper = KeyMapper(
                checkpointer.model_type, HeadDims(attn.num_heads, attn.num_kv_heads, attn.head_dim)
            )
            adapters = {k: v for k, v in state.items() if k.endswith(ADAPTER_SUFFIXES)}
            save_adapter(
                output_dir, adapters, _lora_config(cfg, model), mapper, checkpointer.checkpoint_dir
            )
            state = merge_state_dict(state, model)
        if rank == 0 and hf_base:
            checkpointer.save_checkpoint(state, max_shard_size=cfg.get("max_shard_size", "5GB"))
        elif rank == 0:
            checkpointer.save_checkpoint(state)
    if rank == 0:
        plot_loss_curve(output_dir / METRICS_FILE, output_dir / LOSS_CURVE_FILE)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor on the CPU, gathering FSDP shards (a collective on every rank)."""
    if isinstance(tensor, DTensor):
        tensor = tensor.full_tensor()
    return tensor.detach().cpu()


def _lora_config(cfg: DictConfig, model) -> dict[str, Any]:
    """The LoRA keywords the model was built with (its builder's defaults filled in)."""
    layer = next(m for m in model.modules() if isinstance(m, LoRALinear))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    found = {k: model_cfg[k] for k in LORA_KEYS if k in model_cfg}
    found.setdefault("lora_rank", layer.rank)
    found.setdefault("lora_alpha", layer.alpha)
    found.setdefault("use_dora", layer.use_dora)
    return found
