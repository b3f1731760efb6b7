"""Read and write Hugging Face checkpoints (the torchtune ``FullModelHFCheckpointer`` API)."""

import tempfile
from collections.abc import Iterator, Mapping
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
from modeling.checkpointing.tied_output import without_tied_copy
from modeling.checkpointing.validation import validate_config
from modeling.checkpointing.writers import (
    floating_dtype,
    plan_hf_shards,
    shard_size_bytes,
    write_files,
    write_hf_state_dict,
    write_model_files,
    write_sharded_model,
)
from modeling.convert import HeadDims, KeyMapper
from modeling.convert.hf import IGNORED_HF_KEYS
from modeling.peft import get_adapter_params
from modeling.sharding import gather_full, join_gather
from modeling.storage.paths import as_path

DEFAULT_SHARD_SIZE = "5GB"


class FullModelHFCheckpointer(Checkpointer):
    """Load a Hugging Face checkpoint into our keys; save merged models and PEFT adapters.

    Args:
        checkpoint_dir: The Hugging Face model directory (``config.json`` + weights).
        checkpoint_files: Weight file names, or torchtune's ``filename_format`` /
            ``max_filename`` mapping (see ``checkpoint_file_names``); discovered from the
            index or the files present when omitted.
        model_type: ``llama3`` (also Llama 3.1 and 3.3), ``llama3_2``, ``llama2``,
            ``mistral``, ``phi3_mini``, ``gemma`` or ``qwen2`` (Qwen 2.5;
            torchtune's ``QWEN2``), case-insensitive.
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
        checkpoint_files: list[str] | Mapping[str, str] | None = None,
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
        """Yield our ``(key, tensor)`` pairs one at a time (for loading straight into shards).

        When config.json sets ``tie_word_embeddings: true`` but the files still hold
        ``lm_head.weight`` (a copy of the embedding), no ``output.weight`` is yielded, as
        torchtune's Qwen 2 conversion skips it: the tied model has none.
        """
        skipped: set[str] = set()
        if self.config.get("tie_word_embeddings") is True:
            keys = self.keys()
            why = f"{self.config_path.name} sets tie_word_embeddings: true"
            kept = without_tied_copy(keys, self.shape, why=why, checkpoint_dir=self.checkpoint_dir)
            skipped = set(keys) - set(kept)
        for hf_key, tensor in iter_hf_tensors(self.files):
            for key, value in self.mapper.from_hf(hf_key, tensor):
                if key not in skipped:
                    yield key, value

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

    def shape(self, key: str) -> tuple[int, ...]:
        """Our tensor ``key``'s shape, from the file headers (a fused tensor's part's rows)."""
        rule, _, layer = self.mapper.our_rule(key)
        hf_shape = self.tensor_index().shape(rule.hf.format(layer))
        return (hf_rows(self.tensor_index(), self.mapper, key)[1], *hf_shape[1:])

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
        extra_files: Mapping[str, bytes] | None = None,
    ) -> dict[str, Path]:
        """Write the run's outputs (see :meth:`Checkpointer.write_outputs`).

        A LoRA run gathers only its adapters; rank 0 writes them as a PEFT adapter, and
        every rank merges them into its share of the base's shards, reading only those
        (``max_shard_size`` None keeps the base's files). A full fine-tune writes its
        shards the same way, shard ``i`` from rank ``i % world_size``, gathering tensor by
        tensor (see :meth:`_write_gathered`).
        """
        output_dir = as_path(output_dir)
        world_size = dist.get_world_size() if dist.is_initialized() else 1
        if lora_config is not None:
            adapters = {k: gather_full(v) for k, v in get_adapter_params(model).items()}
            written = {}
            if rank == 0:
                written[ADAPTER_DIR] = save_adapter(
                    output_dir,
                    adapters,
                    lora_config,
                    self.mapper,
                    self.checkpoint_dir,
                    extra_files=extra_files,
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
                    extra_files=extra_files,
                )
            return {**written, MERGED_DIR: merged} if rank == 0 else {}
        merged = self._write_gathered(
            model, output_dir, rank, world_size, max_shard_size, extra_files
        )
        return {MERGED_DIR: merged} if rank == 0 else {}

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
        """Write ``output_dir/merged`` from one process's whole ``state_dict``."""
        shard_size = shard_size_bytes(max_shard_size or DEFAULT_SHARD_SIZE)
        with atomic_directory(output_dir / MERGED_DIR) as tmp:
            write_hf_state_dict(tmp, state_dict, self.mapper, shard_size)
            self._write_model_files(tmp, floating_dtype(state_dict.values()))
        return output_dir / MERGED_DIR

    def _write_gathered(
        self,
        model: nn.Module,
        output_dir: Path,
        rank: int,
        world_size: int,
        max_shard_size,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> Path:
        """Write ``output_dir/merged`` from a (sharded) model, no rank holding all of it.

        The shards are planned from the parameters' global shapes, so every rank knows
        the plan without gathering. Then, tensor by tensor in plan order, every rank joins
        the gather; the rank that writes the shard keeps the tensor (converted to Hugging
        Face layout), the others drop it at once. So each rank holds at most one output
        shard plus the tensor being gathered.
        """
        tensors = unique_tensors(model)
        plan = plan_hf_shards(
            tensors, self.mapper, shard_size_bytes(max_shard_size or DEFAULT_SHARD_SIZE)
        )

        def produce(hf_keys: list[str]):
            for hf_key in hf_keys:
                parts = {key: gather_full(tensors[key]) for key in plan.parts[hf_key]}
                yield from self.mapper.to_hf(parts)
                del parts

        def join(hf_keys: list[str]) -> None:
            for hf_key in hf_keys:
                for key in plan.parts[hf_key]:
                    join_gather(tensors[key])

        with torch.no_grad():
            return write_sharded_model(
                output_dir / MERGED_DIR,
                plan.shards,
                produce,
                rank=rank,
                world_size=world_size,
                total_size=plan.total_size,
                config_path=self.config_path,
                source_dir=self.checkpoint_dir,
                dtype=floating_dtype(tensors.values()),
                extra_files=extra_files,
                join=join,
            )

    def _write_model_files(
        self,
        directory: Path,
        dtype: torch.dtype | None,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> None:
        """``config.json`` (recording ``dtype``), the base's side files, then ``extra_files``."""
        write_model_files(directory, self.config_path, self.checkpoint_dir, dtype, extra_files)


def unique_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state-dict tensors (``DTensor`` shards as they are), tied ones once.

    Ties are found by object identity of the parameters, which every rank sees alike
    (storage pointers would differ on ranks whose shard of a tensor is empty).
    """
    tensors, seen = {}, set()
    for key, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            tensors[key] = tensor
    return tensors


def save_adapter(
    output_dir: Path,
    adapter_weights: dict[str, torch.Tensor],
    adapter_config,
    mapper: KeyMapper,
    base_dir: Path,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``output_dir/adapter`` atomically as a PEFT adapter; return its path.

    ``extra_files`` (name -> contents, the run's tokenizer files) go in with it.
    """
    if adapter_config is None:
        raise ValueError("adapter_weights needs adapter_config (lora_rank, lora_alpha, ...)")
    with atomic_directory(output_dir / ADAPTER_DIR) as tmp:
        write_peft_adapter(tmp, adapter_weights, adapter_config, mapper, str(base_dir))
        write_files(tmp, extra_files)
    return output_dir / ADAPTER_DIR


def require_output_dir(output_dir: Path | None) -> Path:
    """``output_dir``, or a ``ValueError`` saying how to give the checkpointer one."""
    if output_dir is None:
        raise ValueError(
            "save_checkpoint needs an output_dir; pass output_dir= to the checkpointer"
        )
    return output_dir
