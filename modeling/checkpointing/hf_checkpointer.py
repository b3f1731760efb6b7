"""Read and write Hugging Face checkpoints (the torchtune ``FullModelHFCheckpointer`` API)."""

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from modeling.checkpointing.adapter import write_peft_adapter
from modeling.checkpointing.atomic import atomic_directory
from modeling.checkpointing.files import (
    checkpoint_directory,
    read_json,
    required_file,
    resolve_hf_files,
)
from modeling.checkpointing.merge import merge_adapter
from modeling.checkpointing.options import check_torchtune_kwargs
from modeling.checkpointing.protocol import ADAPTER_DIR, MERGED_DIR, Checkpointer
from modeling.checkpointing.readers import TensorIndex, hf_rows, iter_hf_tensors, read_hf_slice
from modeling.checkpointing.validation import validate_config
from modeling.checkpointing.writers import (
    TOKENIZER_FILES,
    copy_files,
    floating_dtype,
    shard_size_bytes,
    write_config,
    write_hf_state_dict,
)
from modeling.convert import HeadDims, KeyMapper
from modeling.convert.hf import IGNORED_HF_KEYS
from modeling.peft import get_adapter_params
from modeling.sharding import gather_full
from modeling.storage.paths import as_path

DEFAULT_SHARD_SIZE = "5GB"


class FullModelHFCheckpointer(Checkpointer):
    """Load a Hugging Face checkpoint into our keys; save merged models and PEFT adapters.

    Args:
        checkpoint_dir: The Hugging Face model directory (``config.json`` + weights).
        checkpoint_files: Weight file names; discovered from the index or the files
            present when omitted.
        model_type: ``llama3``, ``llama2``, ``mistral``, ``phi3_mini`` or ``gemma``
            (case-insensitive).
        output_dir: Where :meth:`save_checkpoint` writes.
        **torchtune_kwargs: torchtune's ``recipe_checkpoint``, ``adapter_checkpoint``,
            ``resume_from_checkpoint``, ... accepted for config compatibility and ignored
            (resuming uses Ray Train checkpoints).

    Raises:
        FileNotFoundError: For a missing directory, config.json or weight file.
        ValueError: For an unknown model_type or keyword.
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        checkpoint_files: list[str] | None = None,
        model_type: str = "llama3",
        output_dir: str | Path | None = None,
        **torchtune_kwargs,
    ) -> None:
        check_torchtune_kwargs(torchtune_kwargs)
        self.checkpoint_dir = checkpoint_directory(checkpoint_dir)
        self.config_path = required_file(self.checkpoint_dir, "config.json")
        self.config = read_json(self.config_path)
        self.mapper = KeyMapper(model_type, HeadDims.from_hf_config(self.config))
        self.model_type = self.mapper.model_type
        self.files = resolve_hf_files(self.checkpoint_dir, checkpoint_files)
        self.output_dir = None if output_dir is None else as_path(output_dir)
        self._index: TensorIndex | None = None

    def load_checkpoint(self) -> dict[str, torch.Tensor]:
        """Our state dict, converted one tensor at a time while the files are read.

        Raises:
            ValueError: Naming an unknown key or a corrupt file.
        """
        return dict(self.iter_checkpoint())

    def iter_checkpoint(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield our ``(key, tensor)`` pairs one at a time (for loading straight into shards)."""
        for hf_key, tensor in iter_hf_tensors(self.files):
            yield from self.mapper.from_hf(hf_key, tensor)

    def tensor_index(self) -> TensorIndex:
        """The index of the checkpoint's tensors (file headers only, read once)."""
        if self._index is None:
            self._index = TensorIndex(self.files)
        return self._index

    def keys(self) -> list[str]:
        """Our keys of every tensor in the checkpoint, from the file headers alone."""
        keys = []
        for hf_key in self.tensor_index().names():
            if IGNORED_HF_KEYS.fullmatch(hf_key):
                continue
            rule, layer = self.mapper.hf_rule(hf_key)
            keys.extend(name.format(layer) for name in rule.ours)
        return keys

    def read_slice(self, key: str, dim: int, start: int, stop: int) -> torch.Tensor:
        """Our tensor ``key`` narrowed to ``[start:stop]`` along ``dim``, reading only that."""
        return read_hf_slice(self.tensor_index(), self.mapper, key, dim, start, stop)

    def read_rows(self, key: str, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``[start, stop)`` of our tensor ``key``, reading only those rows."""
        if stop is None:
            stop = hf_rows(self.tensor_index(), self.mapper, key)[1]
        return self.read_slice(key, 0, start, stop)

    def check_model(self, model: nn.Module) -> None:
        """Compare ``config.json``'s sizes with the model's (see ``validate_config``)."""
        validate_config(self.config, model, config_path=self.config_path)

    def write_outputs(
        self,
        model: nn.Module,
        output_dir: str | Path,
        *,
        rank: int,
        lora_config: dict[str, Any] | None = None,
        max_shard_size: int | str | None = None,
    ) -> dict[str, Path]:
        """Write the run's outputs (see :meth:`Checkpointer.write_outputs`).

        A LoRA run gathers only its adapters; rank 0 writes them as a PEFT adapter, and
        every rank merges them into its share of the base's shards, reading only those
        (``max_shard_size`` None keeps the base's files). A full fine-tune gathers its
        state dict and writes it sharded from rank 0.
        """
        output_dir = as_path(output_dir)
        if lora_config is not None:
            adapters = {k: gather_full(v) for k, v in get_adapter_params(model).items()}
            world_size = dist.get_world_size() if dist.is_initialized() else 1
            written = {}
            if rank == 0:
                written[ADAPTER_DIR] = save_adapter(
                    output_dir, adapters, lora_config, self.mapper, self.checkpoint_dir
                )
            with tempfile.TemporaryDirectory(prefix="tunefleet-adapter-") as local:
                write_peft_adapter(
                    Path(local), adapters, lora_config, self.mapper, str(self.checkpoint_dir)
                )
                merged = merge_adapter(
                    self.checkpoint_dir,
                    local,
                    output_dir / MERGED_DIR,
                    max_shard_size=max_shard_size,
                    rank=rank,
                    world_size=world_size,
                )
            return {**written, MERGED_DIR: merged} if rank == 0 else {}
        state = {k: gather_full(v) for k, v in model.state_dict().items()}
        if rank != 0:
            return {}
        return {MERGED_DIR: self._write_merged(output_dir, state, max_shard_size)}

    def save_checkpoint(
        self,
        state_dict: dict[str, torch.Tensor] | None,
        *,
        max_shard_size: int | str = "5GB",
        adapter_weights: dict[str, torch.Tensor] | None = None,
        adapter_config=None,
    ) -> dict[str, Path]:
        """Write ``output_dir/merged`` (a Hugging Face model) and/or ``output_dir/adapter`` (PEFT).

        Each directory is written atomically. ``merged/`` holds sharded safetensors with
        their index, ``config.json`` (dtype updated) and the input's tokenizer and
        generation files; ``transformers`` loads it unchanged.

        Args:
            state_dict: Our full (merged) state dict, e.g. ``get_merged_state_dict(model)``;
                None to write only the adapter.
            max_shard_size: Largest shard, in bytes or as ``"5GB"``.
            adapter_weights: Our adapter tensors, e.g. ``get_adapter_params(model)``.
            adapter_config: The LoRA keywords (``lora_rank``, ``lora_alpha``, ...) of
                the model, a dict or a ``LoRASpec``; required with ``adapter_weights``.

        Returns:
            The written directories by name (``"merged"``, ``"adapter"``).

        Raises:
            ValueError: For no output_dir, a bad shard size, a key without a Hugging Face
                name, or an output directory that cannot be written.
        """
        output_dir = require_output_dir(self.output_dir)
        written: dict[str, Path] = {}
        if state_dict is not None:
            written[MERGED_DIR] = self._write_merged(output_dir, state_dict, max_shard_size)
        if adapter_weights is not None:
            written[ADAPTER_DIR] = save_adapter(
                output_dir, adapter_weights, adapter_config, self.mapper, self.checkpoint_dir
            )
        return written

    def _write_merged(
        self, output_dir: Path, state_dict: dict[str, torch.Tensor], max_shard_size
    ) -> Path:
        shard_size = shard_size_bytes(max_shard_size or DEFAULT_SHARD_SIZE)
        with atomic_directory(output_dir / MERGED_DIR) as tmp:
            write_hf_state_dict(tmp, state_dict, self.mapper, shard_size)
            write_config(self.config_path, tmp, floating_dtype(state_dict.values()))
            copy_files(self.checkpoint_dir, tmp, TOKENIZER_FILES)
        return output_dir / MERGED_DIR


def save_adapter(
    output_dir: Path,
    adapter_weights: dict[str, torch.Tensor],
    adapter_config,
    mapper: KeyMapper,
    base_dir: Path,
) -> Path:
    """Write ``output_dir/adapter`` atomically as a PEFT adapter; return its path."""
    if adapter_config is None:
        raise ValueError("adapter_weights needs adapter_config (lora_rank, lora_alpha, ...)")
    with atomic_directory(output_dir / ADAPTER_DIR) as tmp:
        write_peft_adapter(tmp, adapter_weights, adapter_config, mapper, str(base_dir))
    return output_dir / ADAPTER_DIR


def require_output_dir(output_dir: Path | None) -> Path:
    """``output_dir``, or a ``ValueError`` saying how to give the checkpointer one."""
    if output_dir is None:
        raise ValueError(
            "save_checkpoint needs an output_dir; pass output_dir= to the checkpointer"
        )
    return output_dir
