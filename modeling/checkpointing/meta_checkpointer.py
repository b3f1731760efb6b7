"""Read and write Meta ``consolidated.NN.pth`` checkpoints (torchtune's Meta checkpointer).

Multi-file checkpoints hold one model-parallel rank each; their slices are concatenated
along the split dim the Meta key map records (replicated norms are taken from rank 0).
The files are memory-mapped, so reading some rows of a tensor touches only those pages.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modeling.checkpointing.atomic import atomic_directory
from modeling.checkpointing.files import (
    checkpoint_directory,
    read_json,
    required_file,
    resolve_meta_files,
)
from modeling.checkpointing.hf_checkpointer import require_output_dir, save_adapter
from modeling.checkpointing.options import check_torchtune_kwargs
from modeling.checkpointing.protocol import ADAPTER_DIR, MERGED_DIR, Checkpointer
from modeling.checkpointing.readers import load_torch_file
from modeling.checkpointing.validation import validate_config
from modeling.checkpointing.writers import copy_files
from modeling.convert import HeadDims, KeyMapper, MetaKeyMapper
from modeling.convert.meta import IGNORED_META_KEYS
from modeling.peft import is_adapter_key, merge_state_dict
from modeling.sharding import gather_full
from modeling.storage.paths import as_path

META_WEIGHTS = "consolidated.00.pth"
META_SIDE_FILES = ("params.json", "tokenizer.model")


class FullModelMetaCheckpointer(Checkpointer):
    """Load a Meta checkpoint (one or more ``consolidated.NN.pth``) into our keys; save one.

    Args:
        checkpoint_dir: The directory with ``consolidated.NN.pth`` and ``params.json``
            (the download's ``original/`` folder).
        checkpoint_files: File names in rank order; all ``consolidated.*.pth`` when omitted.
        model_type: ``llama3``, ``llama2`` or ``mistral`` (case-insensitive).
        output_dir: Where :meth:`save_checkpoint` writes.
        **torchtune_kwargs: torchtune's ``recipe_checkpoint`` etc., accepted and ignored.

    Raises:
        FileNotFoundError: For a missing directory, params.json or weight file.
        ValueError: For a model_type without a Meta format, or an unknown keyword.
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
        self.mapper = MetaKeyMapper(model_type)
        self.model_type = self.mapper.model_type
        self.checkpoint_dir = checkpoint_directory(checkpoint_dir)
        self.params_path = required_file(self.checkpoint_dir, "params.json")
        self.files = resolve_meta_files(self.checkpoint_dir, checkpoint_files)
        self.output_dir = None if output_dir is None else as_path(output_dir)
        self._mapped: list[dict[str, torch.Tensor]] | None = None

    def load_checkpoint(self) -> dict[str, torch.Tensor]:
        """Our state dict (model-parallel slices concatenated).

        Raises:
            ValueError: Naming an unknown key, a corrupt file, or a key missing from a rank.
        """
        return dict(self.iter_checkpoint())

    def iter_checkpoint(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield our ``(key, tensor)`` pairs one at a time."""
        for key in self.keys():
            yield key, self.read_rows(key)

    def keys(self) -> list[str]:
        """Our keys of every tensor in the checkpoint (from the first file's names)."""
        keys = []
        for meta_key in self._files()[0]:
            if not IGNORED_META_KEYS.fullmatch(meta_key):
                rule, layer = self.mapper.meta_rule(meta_key)
                keys.append(rule.ours.format(layer))
        return keys

    def read_rows(self, key: str, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``[start, stop)`` of our tensor ``key``, from the files that hold them.

        Tensors split along dim 0 read only the files (and pages) their rows are in;
        tensors split along dim 1 read those rows of every file.
        """
        meta_key, rule = self.mapper.meta_key(key)
        pieces = [self._piece(tensors, path, meta_key) for tensors, path in self._parts()]
        if rule.split_dim is None or len(pieces) == 1:
            return pieces[0][start:stop].clone()
        if rule.split_dim == 1:
            return torch.cat([piece[start:stop] for piece in pieces], dim=1)
        stop = sum(len(piece) for piece in pieces) if stop is None else stop
        rows, offset = [], 0
        for piece in pieces:
            lo, hi = max(start - offset, 0), min(stop - offset, len(piece))
            if lo < hi:
                rows.append(piece[lo:hi])
            offset += len(piece)
        return torch.cat(rows) if rows else pieces[0][:0].clone()

    def check_model(self, model: nn.Module) -> None:
        """Compare ``params.json``'s sizes with the model's (see ``validate_config``)."""
        params = read_json(self.params_path)
        vocab = params.get("vocab_size")
        as_hf = {
            "hidden_size": params.get("dim"),
            "num_hidden_layers": params.get("n_layers"),
            "num_attention_heads": params.get("n_heads"),
            "num_key_value_heads": params.get("n_kv_heads") or params.get("n_heads"),
            "vocab_size": vocab if vocab and vocab > 0 else None,  # Llama 2 writes -1
        }
        validate_config(as_hf, model, config_path=self.params_path)

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

        ``merged/`` is Meta's one-file format; a LoRA run's ``adapter/`` is a PEFT adapter
        (Hugging Face names). The state dict is gathered on every rank; ``max_shard_size``
        does not apply (the output is one file).
        """
        output_dir = as_path(output_dir)
        state = {k: gather_full(v) for k, v in model.state_dict().items()}
        if rank != 0:
            return {}
        written = {}
        if lora_config is not None:
            attn = model.layers[0].attn
            mapper = KeyMapper(
                self.model_type, HeadDims(attn.num_heads, attn.num_kv_heads, attn.head_dim)
            )
            adapters = {k: v for k, v in state.items() if is_adapter_key(k)}
            written[ADAPTER_DIR] = save_adapter(
                output_dir, adapters, lora_config, mapper, self.checkpoint_dir
            )
            state = merge_state_dict(state, model)
        written[MERGED_DIR] = self._write_merged(output_dir, state)
        return written

    def save_checkpoint(self, state_dict: dict[str, torch.Tensor]) -> dict[str, Path]:
        """Write ``output_dir/merged/consolidated.00.pth`` with params.json (and tokenizer.model).

        Written atomically, as one unsplit file in Meta's key names.

        Returns:
            ``{"merged": path}``.
        """
        output_dir = require_output_dir(self.output_dir)
        return {MERGED_DIR: self._write_merged(output_dir, state_dict)}

    def _write_merged(self, output_dir: Path, state_dict: dict[str, torch.Tensor]) -> Path:
        meta = dict(self.mapper.to_meta(key, tensor) for key, tensor in state_dict.items())
        with atomic_directory(output_dir / MERGED_DIR) as tmp:
            torch.save(meta, tmp / META_WEIGHTS)
            copy_files(self.checkpoint_dir, tmp, META_SIDE_FILES)
        return output_dir / MERGED_DIR

    def _files(self) -> list[dict[str, torch.Tensor]]:
        """Each file's tensors, memory-mapped on first use."""
        if self._mapped is None:
            self._mapped = [load_torch_file(path) for path in self.files]
        return self._mapped

    def _parts(self) -> list[tuple[dict[str, torch.Tensor], Path]]:
        return list(zip(self._files(), self.files, strict=True))

    @staticmethod
    def _piece(tensors: dict[str, torch.Tensor], path: Path, meta_key: str) -> torch.Tensor:
        if meta_key not in tensors:
            raise ValueError(
                f"{path.name} lacks {meta_key!r} that consolidated.00.pth has; the files are "
                f"from different checkpoints or one is incomplete"
            )
        return tensors[meta_key]
