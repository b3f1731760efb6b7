"""Write Hugging Face model directories: sharded safetensors, index, config and tokenizer.

Shards are planned from tensor sizes alone (greedily, in the order ``save_pretrained``
writes a model, so equal shard sizes give an identical ``weight_map``), then each shard's
tensors are produced, written and freed before the next: no second full state dict.
Sizes come from shapes, so a sharded model (FSDP2 ``DTensor``, whose ``shape`` is the
global one) is planned before anything is gathered, and its shards split across ranks.
"""

import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from modeling.checkpointing.atomic import shared_directory
from modeling.checkpointing.readers import SAFETENSORS_DTYPES
from modeling.convert import KeyMapper
from modeling.storage.paths import StoragePath

INDEX_NAME = "model.safetensors.index.json"
# Files of a Hugging Face model directory copied unchanged into outputs (when present).
TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)
# transformers' module registration order inside a decoder layer (Phi-3 puts o_proj first).
_HF_LAYER_ORDER = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "self_attn.qkv_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.gate_up_proj",
    "mlp.down_proj",
    "input_layernorm",
    "post_attention_layernorm",
)
_LAYER_KEY = re.compile(r"model\.layers\.(\d+)\.(.+)\.(?:weight|bias)")
_ENDS = {"model.embed_tokens.weight": 0, "model.norm.weight": 2, "lm_head.weight": 3}

# Decimal units, as Hugging Face's max_shard_size ("5GB" = 5 * 10**9 bytes).
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?")

_DTYPE_NAMES = {dtype: name for name, dtype in SAFETENSORS_DTYPES.items()}

Produce = Callable[[list[str]], Iterable[tuple[str, torch.Tensor]]]


def shard_size_bytes(max_shard_size: int | str) -> int:
    """``max_shard_size`` in bytes: an int, or a string such as ``"5GB"`` or ``"500MB"``.

    Raises:
        ValueError: Naming the value when it is not a positive size.
    """
    size = max_shard_size
    if isinstance(max_shard_size, str):
        match = _SIZE.fullmatch(max_shard_size.strip().upper())
        if match is None:
            raise ValueError(
                f"max_shard_size {max_shard_size!r} is not a size; use bytes or e.g. '5GB', '500MB'"
            )
        size = int(float(match.group(1)) * _UNITS[match.group(2) or ""])
    if size <= 0:
        raise ValueError(f"max_shard_size must be positive, got {max_shard_size!r}")
    return size


def hf_sort_key(key: str) -> tuple:
    """Order Hugging Face keys as ``save_pretrained`` writes them (embeddings, layers, head)."""
    if key in _ENDS:
        return (_ENDS[key],)
    match = _LAYER_KEY.fullmatch(key)
    if match is None:
        return (4, key)
    name = match.group(2)
    rank = _HF_LAYER_ORDER.index(name) if name in _HF_LAYER_ORDER else len(_HF_LAYER_ORDER)
    return (1, int(match.group(1)), rank, name)


def plan_shards(sizes: Sequence[tuple[str, int]], max_shard_size: int) -> list[list[str]]:
    """Group ``(key, nbytes)`` in order into shards of at most ``max_shard_size`` bytes.

    A tensor larger than the limit gets a shard of its own, as in Hugging Face's splitter.
    """
    shards: list[list[str]] = []
    current: list[str] = []
    current_size = 0
    for key, nbytes in sizes:
        if nbytes > max_shard_size:
            shards.append([key])
            continue
        if current and current_size + nbytes > max_shard_size:
            shards.append(current)
            current, current_size = [], 0
        current.append(key)
        current_size += nbytes
    if current:
        shards.append(current)
    return shards


def shard_file_names(plan: list[list[str]]) -> list[str]:
    """``model-0000i-of-0000N.safetensors`` for each planned shard, in order."""
    return [f"model-{i:05d}-of-{len(plan):05d}.safetensors" for i in range(1, len(plan) + 1)]


def write_shard_files(
    directory: Path,
    plan: list[list[str]],
    produce: Produce,
    *,
    rank: int = 0,
    world_size: int = 1,
    join: Callable[[list[str]], None] | None = None,
) -> int:
    """Write this rank's shards of ``plan`` (shard ``i`` belongs to rank ``i % world_size``).

    Args:
        directory: Where to write (normally an :func:`atomic_directory`).
        plan: Hugging Face keys per shard.
        produce: Given one shard's keys, yields exactly those keys and their tensors.
        rank: This process's rank.
        world_size: How many ranks share the writing.
        join: Called, in plan order, with the keys of each shard another rank writes,
            when producing a shard takes every rank (collective gathers): it joins them
            and keeps nothing.

    Returns:
        The bytes of tensors this rank wrote.
    """
    written = 0
    for number, (name, keys) in enumerate(zip(shard_file_names(plan), plan, strict=True)):
        if number % world_size != rank:
            if join is not None:
                join(keys)
            continue
        tensors = {key: tensor.contiguous() for key, tensor in produce(keys)}
        assert set(tensors) == set(keys), "a shard producer must yield exactly its keys"
        save_file(tensors, directory / name, metadata={"format": "pt"})
        written += sum(t.numel() * t.element_size() for t in tensors.values())
        del tensors
    return written


def write_sharded_model(
    output: Path | StoragePath,
    plan: list[list[str]],
    produce: Produce,
    *,
    rank: int,
    world_size: int,
    total_size: int,
    config_path: Path,
    source_dir: Path,
    dtype: torch.dtype | None,
    extra_files: Mapping[str, bytes] | None = None,
    join: Callable[[list[str]], None] | None = None,
) -> Path | StoragePath:
    """Write a whole Hugging Face model directory at ``output``, its shards split over ranks.

    Every rank writes its shards of ``plan`` (:func:`write_shard_files`) into one shared
    directory; once all are done, rank 0 checks they arrived (a local ``output``), writes
    the index and the model's side files (:func:`write_model_files`), and the directory
    is published whole. Every rank must call it (it synchronises them).

    Args:
        output: The model directory to produce (local path or URI).
        plan: Hugging Face keys per shard.
        produce: Given one shard's keys, yields exactly those keys and their tensors.
        rank: This process's rank.
        world_size: Ranks sharing the writing.
        total_size: Bytes of all the tensors, for the index.
        config_path: The base's ``config.json``.
        source_dir: Where the base's tokenizer and side files are.
        dtype: Recorded in ``config.json`` when given.
        extra_files: ``name -> contents`` written over the copied side files.
        join: See :func:`write_shard_files`.
    """
    with shared_directory(output, rank, world_size) as tmp:
        write_shard_files(tmp, plan, produce, rank=rank, world_size=world_size, join=join)
        if world_size > 1:
            dist.barrier()
        if rank == 0:
            if not isinstance(output, StoragePath):
                check_shards_arrived(tmp, shard_file_names(plan), output)
            write_index(tmp, plan, total_size)
            write_model_files(tmp, config_path, source_dir, dtype, extra_files)
    return output


def write_index(directory: Path, plan: list[list[str]], total_size: int) -> dict[str, str]:
    """Write ``model.safetensors.index.json`` for ``plan``; return its ``weight_map``."""
    weight_map = {
        key: name for name, keys in zip(shard_file_names(plan), plan, strict=True) for key in keys
    }
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
    return weight_map


def write_shards(directory: Path, plan: list[list[str]], produce: Produce) -> dict[str, str]:
    """Write every planned shard and the index from one process; return the ``weight_map``."""
    return write_index(directory, plan, write_shard_files(directory, plan, produce))


@dataclass
class HFShardPlan:
    """Which Hugging Face tensors go in which shard, and which of our tensors make each.

    Attributes:
        shards: Hugging Face keys per shard, in write order.
        parts: Our keys of each Hugging Face key (several for a fused one, e.g. Phi-3 qkv).
        total_size: Bytes of all tensors (the index's ``total_size``).
    """

    shards: list[list[str]]
    parts: dict[str, list[str]]
    total_size: int


def plan_hf_shards(
    tensors: dict[str, torch.Tensor], mapper: KeyMapper, max_shard_size: int
) -> HFShardPlan:
    """Plan the Hugging Face shards of our ``tensors`` from their shapes and dtypes alone.

    ``tensors`` may be FSDP2 ``DTensor`` shards (their ``shape`` is the whole tensor's), so
    every rank plans the same shards without gathering anything.
    """
    parts: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for key, tensor in tensors.items():
        rule, _, layer = mapper.our_rule(key)
        hf_key = rule.hf.format(layer)
        parts.setdefault(hf_key, []).append(key)
        sizes[hf_key] = sizes.get(hf_key, 0) + tensor.shape.numel() * tensor.dtype.itemsize
    order = sorted(sizes, key=hf_sort_key)
    shards = plan_shards([(key, sizes[key]) for key in order], max_shard_size)
    return HFShardPlan(shards, parts, sum(sizes.values()))


def write_hf_state_dict(
    directory: Path,
    state_dict: dict[str, torch.Tensor],
    mapper: KeyMapper,
    max_shard_size: int,
) -> dict[str, str]:
    """Write our ``state_dict`` as Hugging Face shards, converting one shard at a time.

    Tensors sharing storage (a tied output) are written once, as ``save_pretrained`` does.
    """
    unique: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, tuple[int, ...]]] = set()
    for key, tensor in state_dict.items():
        identity = (tensor.data_ptr(), tuple(tensor.shape))
        if tensor.numel() and identity in seen:
            continue
        seen.add(identity)
        unique[key] = tensor
    plan = plan_hf_shards(unique, mapper, max_shard_size)

    def produce(keys: list[str]) -> Iterable[tuple[str, torch.Tensor]]:
        return mapper.to_hf({ours: unique[ours] for key in keys for ours in plan.parts[key]})

    return write_shards(directory, plan.shards, produce)


def write_model_files(
    directory: Path,
    config_path: Path,
    source_dir: Path,
    dtype: torch.dtype | None,
    extra_files: Mapping[str, bytes] | None = None,
) -> None:
    """Write a model directory's non-weight files: ``config.json`` and the base's side files.

    The one place every Hugging Face output (merged LoRA, full fine-tune,
    ``save_checkpoint``) gets them: ``config.json`` (``dtype`` recorded when given) and
    those of :data:`TOKENIZER_FILES` that ``source_dir`` has, then ``extra_files`` over them.
    """
    write_config(config_path, directory, dtype)
    copy_files(source_dir, directory, TOKENIZER_FILES)
    write_files(directory, extra_files)


def write_files(directory: Path, files: Mapping[str, bytes] | None) -> None:
    """Write each ``name -> contents`` of ``files`` into ``directory`` (None: nothing)."""
    for name, data in (files or {}).items():
        (directory / name).write_bytes(data)


def check_shards_arrived(directory: Path, names: list[str], output: Path) -> None:
    """Every rank's shards must be in the directory rank 0 finishes (a local output_dir).

    Raises:
        ValueError: Naming the missing shards and the fix, when ranks on other machines
            wrote them to a directory rank 0 does not see.
    """
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise ValueError(
            f"Shards {missing[:3]} written by other ranks are not in {str(output)!r}: the "
            f"ranks run on machines that do not share this directory. Set output_dir to a "
            f"URI (s3://, gs://) or a file system every node mounts"
        )


def write_config(source: Path, directory: Path, dtype: torch.dtype | None) -> None:
    """Copy ``config.json``, recording ``dtype`` as the weights' dtype when given."""
    config = json.loads(source.read_text())
    if dtype is not None:
        name = str(dtype).removeprefix("torch.")
        keys = [key for key in ("dtype", "torch_dtype") if key in config] or ["torch_dtype"]
        config.update(dict.fromkeys(keys, name))
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def copy_files(source_dir: Path, directory: Path, names: Iterable[str]) -> list[str]:
    """Copy those of ``names`` that exist in ``source_dir``; return the ones copied."""
    copied = []
    for name in names:
        source = source_dir / name
        if source.is_file():
            if isinstance(source, StoragePath):
                (directory / name).write_bytes(source.read_bytes())
            else:
                shutil.copy2(source, directory / name)
            copied.append(name)
    return copied


def floating_dtype(tensors: Iterable[torch.Tensor]) -> torch.dtype | None:
    """The dtype of the first floating-point tensor, which names a checkpoint's dtype."""
    return next((t.dtype for t in tensors if t.dtype.is_floating_point), None)


def save_file(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file straight from the tensors' memory.

    ``safetensors.torch.save_file`` first copies every tensor into a bytes object, which
    doubles a shard's memory; this writes the same format without that copy.
    """
    header: dict = {"__metadata__": metadata}
    offset = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        header[key] = {
            "dtype": _DTYPE_NAMES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(encoded).to_bytes(8, "little"))
        f.write(encoded)
        for tensor in tensors.values():
            if tensor.numel():
                f.write(memoryview(tensor.contiguous().view(-1).view(torch.uint8).numpy()))
