"""Merge a PEFT LoRA/DoRA adapter into a Hugging Face checkpoint, one shard at a time.

The adapter is already in Hugging Face layout (PEFT names, rotate-half q/k rows), so
each base tensor gets ``W + (alpha / r) B A`` directly, DoRA-rescaled per row when the
adapter has a magnitude. Only one output shard, one base tensor and the adapter are in
memory at once; the output directory appears atomically.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from modeling.checkpointing.adapter import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from modeling.checkpointing.files import (
    checkpoint_directory,
    read_json,
    required_file,
    resolve_hf_files,
)
from modeling.checkpointing.output_rule import check_output_directory
from modeling.checkpointing.readers import TensorIndex, iter_hf_tensors
from modeling.checkpointing.writers import (
    hf_sort_key,
    plan_shards,
    shard_size_bytes,
    write_sharded_model,
)
from modeling.convert.hf import PEFT_PREFIX
from modeling.peft.lora import merge_lora_weight
from modeling.storage.paths import as_path

_SUFFIXES = {
    "lora_A.weight": "a",
    "lora_B.weight": "b",
    "lora_magnitude_vector": "magnitude",
    "lora_magnitude_vector.weight": "magnitude",
}


@dataclass
class LoraUpdate:
    """One module's adapter tensors (Hugging Face layout) and its scale."""

    a: torch.Tensor | None = None
    b: torch.Tensor | None = None
    magnitude: torch.Tensor | None = None
    scaling: float = 1.0

    def apply(self, weight: torch.Tensor) -> torch.Tensor:
        """The merged weight (see :func:`~modeling.peft.lora.merge_lora_weight`)."""
        return merge_lora_weight(weight, self.a, self.b, self.scaling, self.magnitude)


def read_peft_adapter(adapter_dir: Path) -> dict[str, LoraUpdate]:
    """The updates of a PEFT LoRA adapter directory, by base weight key.

    Raises:
        FileNotFoundError: For missing adapter files.
        ValueError: For a non-LoRA adapter, unsupported options or unexpected keys.
    """
    config = read_json(required_file(adapter_dir, ADAPTER_CONFIG))
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(
            f"{adapter_dir / ADAPTER_CONFIG}: peft_type {config['peft_type']!r} "
            f"is not LORA; only LoRA/DoRA adapters can be merged"
        )
    if config.get("fan_in_fan_out"):
        raise ValueError(
            f"{adapter_dir / ADAPTER_CONFIG}: fan_in_fan_out adapters are not "
            f"supported (no Llama-family model uses them)"
        )
    weights = [adapter_dir / name for name in (ADAPTER_WEIGHTS, "adapter_model.bin")]
    present = [path for path in weights if path.is_file()]
    if not present:
        required_file(adapter_dir, ADAPTER_WEIGHTS)  # raises, listing the directory
    updates: dict[str, LoraUpdate] = {}
    for key, tensor in iter_hf_tensors(present[:1]):
        suffix = next((s for s in _SUFFIXES if key.endswith("." + s)), None)
        if suffix is None or not key.startswith(PEFT_PREFIX):
            raise ValueError(
                f"Unexpected key {key!r} in {present[0]}: only LoRA A/B and DoRA "
                f"magnitudes (no modules_to_save, bias or embeddings) can be merged"
            )
        module = key[len(PEFT_PREFIX) : -len(suffix) - 1]
        setattr(updates.setdefault(module + ".weight", LoraUpdate()), _SUFFIXES[suffix], tensor)
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    for key, update in updates.items():
        if update.a is None or update.b is None:
            raise ValueError(f"{present[0]} has an incomplete adapter for {key!r} (A or B missing)")
        module = key.removesuffix(".weight")
        rank = int(pattern_value(rank_pattern, module, config["r"]))
        alpha = float(pattern_value(alpha_pattern, module, config["lora_alpha"]))
        update.scaling = alpha / rank**0.5 if config.get("use_rslora") else alpha / rank
    return updates


def pattern_value(pattern: Mapping[str, float], module: str, default: float) -> float:
    """A module's value in PEFT's ``rank_pattern``/``alpha_pattern``, else ``default``.

    As PEFT's ``get_pattern_key``: the first key that, read as a regular expression,
    matches the end of the module's name at a ``.`` boundary.
    """
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def merge_adapter(
    base_dir: str | Path,
    adapter_dir: str | Path,
    output_dir: str | Path,
    max_shard_size: int | str | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
    force: bool = False,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``base + adapter`` as a Hugging Face model directory at ``output_dir``.

    With several ranks (all calling it), each merges and writes a disjoint set of output
    shards, reading only the base tensors of those shards; rank 0 writes the index, config
    and tokenizer files last. So merge time falls as ranks are added, and no rank waits
    on another's whole-model merge.

    Args:
        base_dir: The base Hugging Face model directory.
        adapter_dir: A PEFT adapter directory (``adapter_config.json`` + weights).
        output_dir: The merged model's directory, written atomically (replaced if present).
        max_shard_size: Largest output shard (bytes or ``"5GB"``); None keeps the base's
            one shard per input file.
        rank: This process's rank (``torch.distributed`` initialised when more than one).
        world_size: How many ranks share the merge.
        force: Replace an existing ``output_dir`` even if it is not a model directory.
        extra_files: File name -> contents written into the output (tokenizer files)
            over those copied from the base.

    Returns:
        ``output_dir``.

    Raises:
        FileNotFoundError: For missing directories or files.
        ValueError: For adapters on modules the base lacks, corrupt files, bad sizes or
            an output directory that cannot be written.
    """
    check_output_directory(output_dir, [base_dir, adapter_dir], force=force)
    base = checkpoint_directory(base_dir)
    config_path = required_file(base, "config.json")
    index = TensorIndex(resolve_hf_files(base))
    updates = read_peft_adapter(checkpoint_directory(adapter_dir))
    unknown = sorted(set(updates) - set(index.names()))
    if unknown:
        raise ValueError(
            f"The adapter in {adapter_dir} targets weights the base {base} lacks: {unknown[:5]}; "
            f"is it the adapter of this base model?"
        )
    for key, update in updates.items():
        rows, columns = index.shape(key)[:2]
        if update.b.shape[0] != rows or update.a.shape[1] != columns:
            raise ValueError(
                f"The adapter in {adapter_dir} does not fit the base {base}: for {key!r} it "
                f"gives a ({update.b.shape[0]} x {update.a.shape[1]}) update, the base weight "
                f"is ({rows} x {columns}); is it the adapter of a model of another size?"
            )
    if max_shard_size is None:
        by_file: dict[Path, list[str]] = {}
        for key in sorted(index.names(), key=hf_sort_key):
            by_file.setdefault(index.location[key], []).append(key)
        plan = [by_file[path] for path in index.files if path in by_file]
    else:
        ordered = sorted(index.names(), key=hf_sort_key)
        plan = plan_shards(
            [(key, index.nbytes(key)) for key in ordered], shard_size_bytes(max_shard_size)
        )

    def produce(keys: list[str]):
        for key in keys:
            tensor = index.read(key)
            yield key, updates[key].apply(tensor) if key in updates else tensor

    return write_sharded_model(
        as_path(output_dir),
        plan,
        produce,
        rank=rank,
        world_size=world_size,
        total_size=sum(index.nbytes(key) for keys in plan for key in keys),
        config_path=config_path,
        source_dir=base,
        dtype=None,
        extra_files=extra_files,
    )
