"""Write LoRA/DoRA adapters as a PEFT adapter directory.

The directory (``adapter_model.safetensors`` + ``adapter_config.json``) is what
``peft.PeftModel.from_pretrained(hf_model, adapter_dir)`` loads; key names and the
rotary row order of q/k ``lora_B`` come from :meth:`KeyMapper.adapter_to_peft`.
"""

import dataclasses
import json
from pathlib import Path

import torch

from modeling.checkpointing.writers import save_file
from modeling.convert import KeyMapper

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def peft_adapter_config(
    adapter_config, target_modules: list[str], base_model_name_or_path: str
) -> dict:
    """PEFT's ``adapter_config.json`` for our LoRA settings.

    Args:
        adapter_config: A mapping or object (e.g. :class:`modeling.builders.LoRASpec`) with
            our builder keywords ``lora_rank``, ``lora_alpha`` and optionally
            ``lora_dropout`` and ``use_dora``.
        target_modules: Hugging Face module names the adapters sit on (``q_proj``, ...).
        base_model_name_or_path: The base model's directory or hub name.

    Raises:
        ValueError: Naming a missing ``lora_rank``/``lora_alpha``.
    """
    if dataclasses.is_dataclass(adapter_config):
        adapter_config = dataclasses.asdict(adapter_config)
    elif not isinstance(adapter_config, dict):
        adapter_config = vars(adapter_config)
    missing = [name for name in ("lora_rank", "lora_alpha") if name not in adapter_config]
    if missing:
        raise ValueError(
            f"adapter_config lacks {missing}; pass the lora_* builder keywords, e.g. "
            f"{{'lora_rank': 8, 'lora_alpha': 16}}"
        )
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name_or_path,
        "r": int(adapter_config["lora_rank"]),
        "lora_alpha": float(adapter_config["lora_alpha"]),
        "lora_dropout": float(adapter_config.get("lora_dropout", 0.0)),
        "target_modules": target_modules,
        "use_dora": bool(adapter_config.get("use_dora", False)),
        "use_rslora": False,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "modules_to_save": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }


def write_peft_adapter(
    directory: Path,
    adapter_weights: dict[str, torch.Tensor],
    adapter_config,
    mapper: KeyMapper,
    base_model_name_or_path: str,
) -> None:
    """Write our adapter tensors (``...lora_a.weight`` etc.) as a PEFT adapter into ``directory``.

    Raises:
        ValueError: For an empty adapter, or one on a projection PEFT cannot express.
    """
    if not adapter_weights:
        raise ValueError("adapter_weights is empty; pass get_adapter_params(model)")
    tensors = dict(
        mapper.adapter_to_peft(key, tensor.detach()) for key, tensor in adapter_weights.items()
    )
    modules = sorted({_module_name(key) for key in tensors})
    config = peft_adapter_config(adapter_config, modules, base_model_name_or_path)
    save_file(
        {key: t.contiguous() for key, t in tensors.items()},
        directory / ADAPTER_WEIGHTS,
        metadata={"format": "pt"},
    )
    (directory / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def _module_name(peft_key: str) -> str:
    """``q_proj`` of ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``."""
    return peft_key.removesuffix(".weight").rsplit(".", 2)[-2]
