"""What a finished run leaves behind: its checkpointer's outputs and the loss curve."""

import json
from typing import Any

import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from modeling.builders import LORA_OPTIONS
from modeling.checkpointing import ADAPTER_DIR, MERGED_DIR, Checkpointer
from modeling.peft import LoRALinear
from modeling.storage.paths import as_path
from modeling.tokenizers.hf_export import hf_tokenizer_files
from orchestrator.training.metric_logger import LOSS_CURVE_FILE, METRICS_FILE, plot_loss_curve

__all__ = ["ADAPTER_DIR", "MERGED_DIR", "write_outputs"]

LORA_KEYS = ("lora_attn_modules", *LORA_OPTIONS)  # every keyword a lora_ builder adds


def write_outputs(
    cfg: DictConfig, model, checkpointer: Checkpointer, tokenizer, rank: int, is_lora: bool
) -> None:
    """Write ``adapter/`` (LoRA) and ``merged/`` under ``cfg.output_dir``, then the loss curve.

    ``cfg.output_dir`` is the one place outputs go, whatever the checkpointer's own
    ``output_dir`` says. Every rank calls this: the checkpointer's gathers are collectives.
    Both directories get Hugging Face tokenizer files made from the run's ``tokenizer``
    (:func:`~modeling.tokenizers.hf_export.hf_tokenizer_files`), written before each is
    published, so ``AutoTokenizer`` loads them whatever files the base came with.
    """
    output_dir = as_path(cfg.output_dir)
    checkpointer.write_outputs(
        model,
        output_dir,
        rank=rank,
        lora_config=_lora_config(cfg, model) if is_lora else None,
        max_shard_size=cfg.get("max_shard_size"),
        extra_files=tokenizer_files(tokenizer, checkpointer) if rank == 0 else None,
    )
    if rank == 0:
        plot_loss_curve(output_dir / METRICS_FILE, output_dir / LOSS_CURVE_FILE)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def tokenizer_files(tokenizer, checkpointer: Checkpointer) -> dict[str, bytes]:
    """The run's tokenizer as Hugging Face files, with the base's generation settings kept."""
    generation_path = checkpointer.checkpoint_dir / "generation_config.json"
    generation = json.loads(generation_path.read_text()) if generation_path.is_file() else None
    return hf_tokenizer_files(tokenizer, generation)


def _lora_config(cfg: DictConfig, model) -> dict[str, Any]:
    """The LoRA keywords the model was built with (its builder's defaults filled in)."""
    layer = next(m for m in model.modules() if isinstance(m, LoRALinear))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    found = {k: model_cfg[k] for k in LORA_KEYS if k in model_cfg}
    found.setdefault("lora_rank", layer.rank)
    found.setdefault("lora_alpha", layer.alpha)
    found.setdefault("use_dora", layer.use_dora)
    return found
