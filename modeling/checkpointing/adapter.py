"""Write LoRA/DoRA adapters as a PEFT adapter directory.

The directory (``adapter_model.safetensors`` + ``adapter_config.json``) is what
``peft.PeftModel.from_pretrained(hf_model, adapter_dir)`` loads; key names, the rotary
row order of q/k ``lora_B`` and the fusing of adapters on Phi-3's fused projections come
from :meth:`KeyMapper.adapters_to_peft`. A fused module's rank is the sum of its parts'
ranks, so its rank and alpha go into PEFT's ``rank_pattern``/``alpha_pattern``.
"""

import dataclasses
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path

import torch

from modeling.checkpointing.files import checkpoint_directory, resolve_hf_files
from modeling.checkpointing.readers import TensorIndex
from modeling.checkpointing.writers import save_file
from modeling.convert import KeyMapper
from modeling.convert.hf import PEFT_PREFIX

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
_LORA_A = ".lora_A.weight"


def peft_adapter_config(
    adapter_config,
    target_modules: list[str],
    base_model_name_or_path: str,
    rank_pattern: dict[str, int] | None = None,
    alpha_pattern: dict[str, float] | None = None,
) -> dict:
    """PEFT's ``adapter_config.json`` for our LoRA settings.

    Args:
        adapter_config: A mapping or object (e.g. :class:`modeling.builders.LoRASpec`) with
            our builder keywords ``lora_rank``, ``lora_alpha`` and optionally
            ``lora_dropout`` and ``use_dora``.
        target_modules: Hugging Face module names the adapters sit on (``q_proj``, ...).
        base_model_name_or_path: The base model's directory or hub name.
        rank_pattern: PEFT's per-module ranks where they differ from ``lora_rank``.
        alpha_pattern: PEFT's per-module alphas where they differ from ``lora_alpha``.

    Raises:
        ValueError: Naming a missing ``lora_rank``/``lora_alpha``.
    """
    adapter_config = _as_dict(adapter_config)
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
        "rank_pattern": rank_pattern or {},
        "alpha_pattern": alpha_pattern or {},
    }


def write_peft_adapter(
    directory: Path,
    adapter_weights: dict[str, torch.Tensor],
    adapter_config,
    mapper: KeyMapper,
    base_model_name_or_path: str,
) -> None:
    """Write our adapter tensors (``...lora_a.weight`` etc.) as a PEFT adapter into ``directory``.

    DoRA on some parts of a fused projection (e.g. Phi-3 with ``lora_attn_modules``
    ``[q_proj, v_proj]`` and ``use_dora``) reads the base weight's row norms from
    ``base_model_name_or_path``; nothing else reads the base.

    Raises:
        ValueError: For an empty adapter, an adapter whose rank is not ``lora_rank``, or
            one on a projection PEFT cannot express.
    """
    if not adapter_weights:
        raise ValueError("adapter_weights is empty; pass get_adapter_params(model)")
    config = _as_dict(adapter_config)
    rank, alpha = int(config["lora_rank"]), float(config["lora_alpha"])
    for key, tensor in adapter_weights.items():
        if key.endswith(".lora_a.weight") and tensor.shape[0] != rank:
            raise ValueError(
                f"Adapter {key!r} has rank {tensor.shape[0]} but adapter_config gives "
                f"lora_rank={rank}; pass the model's own LoRA keywords"
            )
    tensors = mapper.adapters_to_peft(
        {key: tensor.detach() for key, tensor in adapter_weights.items()},
        base_row_norms=_base_row_norms(base_model_name_or_path),
    )
    modules = sorted({_module_name(key) for key in tensors})
    ranks = {
        key[len(PEFT_PREFIX) : -len(_LORA_A)]: tensor.shape[0]
        for key, tensor in tensors.items()
        if key.endswith(_LORA_A)
    }
    rank_pattern = fused_rank_pattern(ranks, rank)
    alpha_pattern = {key: alpha * r / rank for key, r in rank_pattern.items()}
    peft_config = peft_adapter_config(
        config, modules, base_model_name_or_path, rank_pattern, alpha_pattern
    )
    save_file(
        {key: t.contiguous() for key, t in tensors.items()},
        directory / ADAPTER_WEIGHTS,
        metadata={"format": "pt"},
    )
    (directory / ADAPTER_CONFIG).write_text(json.dumps(peft_config, indent=2) + "\n")


def fused_rank_pattern(ranks: dict[str, int], rank: int) -> dict[str, int]:
    """PEFT ``rank_pattern`` entries for the modules whose rank is not ``rank``.

    A module name (``qkv_proj``) stands for all of its layers when they share one rank,
    as they do for every model our builders make; otherwise each module gets its full
    path (escaped: PEFT reads the keys as regular expressions).

    Args:
        ranks: The rank of each adapted module, by its path (``model.layers.0.self_attn.
            qkv_proj``).
        rank: The adapter's ``r``.
    """
    by_name: dict[str, set[int]] = {}
    for path, r in ranks.items():
        by_name.setdefault(path.rsplit(".", 1)[-1], set()).add(r)
    pattern = {}
    for path, r in sorted(ranks.items()):
        name = path.rsplit(".", 1)[-1]
        if r != rank:
            pattern[name if len(by_name[name]) == 1 else re.escape(path)] = r
    return pattern


def _base_row_norms(base_model_name_or_path: str) -> Callable[[str], torch.Tensor]:
    """Row norms of a base weight (Hugging Face key), read from the base directory on demand."""

    @functools.cache
    def index() -> TensorIndex:
        try:
            return TensorIndex(resolve_hf_files(checkpoint_directory(base_model_name_or_path)))
        except FileNotFoundError as err:
            raise ValueError(
                f"DoRA (use_dora=True) on some of a fused projection's parts needs the base "
                f"weights' row norms, and the base {base_model_name_or_path!r} cannot be read "
                f"({err}); adapt all of its parts (lora_attn_modules q_proj, k_proj, v_proj / "
                f"apply_lora_to_mlp) or set use_dora=False"
            ) from err

    def norms(hf_key: str) -> torch.Tensor:
        return torch.linalg.vector_norm(index().read(hf_key).float(), dim=1)

    return norms


def _as_dict(adapter_config) -> dict:
    """Our LoRA keywords as a dict, checked to hold ``lora_rank`` and ``lora_alpha``."""
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
    return adapter_config


def _module_name(peft_key: str) -> str:
    """``q_proj`` of ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``."""
    return peft_key.removesuffix(".weight").rsplit(".", 2)[-2]
