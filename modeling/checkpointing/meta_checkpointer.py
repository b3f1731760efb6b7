"""Read and write Meta ``consolidated.NN.pth`` checkpoints (torchtune's Meta checkpointer).

Multi-file checkpoints hold one model-parallel rank each; their slices are concatenated
along the split dim the Meta key map records for the model type (replicated norms are
taken from rank 0). The files are memory-mapped, so reading some rows of a tensor touches
only those pages; the mappings are dropped whenever the pages read since the last drop
add up to one file, so a load holds at most about one file's worth of them.

Outputs are written tensor by tensor into one ``consolidated.00.pth``
(:class:`~modeling.checkpointing.torch_archive.TorchArchiveWriter`): no rank ever holds
the whole model.

Llama 3.2's files store ``output.weight`` as a copy of the embedding its model ties the
output to: :meth:`FullModelMetaCheckpointer.load_checkpoint` drops it, as torchtune
does, and outputs get it back, written from the embedding.
"""

from collections.abc import Iterable, Iterator, Mapping
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
from modeling.checkpointing.tied_output import EMBEDDING_KEY, OUTPUT_KEY, without_tied_copy
from modeling.checkpointing.torch_archive import TorchArchiveWriter
from modeling.checkpointing.validation import validate_config
from modeling.checkpointing.writers import copy_files, write_files
from modeling.convert import HeadDims, KeyMapper, MetaKeyMapper
from modeling.convert.meta import EMBEDDING_KEY as META_EMBEDDING_KEY
from modeling.convert.meta import (
    EMBEDDING_SPLIT_DIMS,
    IGNORED_META_KEYS,
    SCALED_ROPE_FACTORS,
    TIED_OUTPUT_MODEL_TYPES,
)
from modeling.peft import LoRALinear, get_adapter_params
from modeling.peft.adapters import merge_weight
from modeling.sharding import gather_full, join_gather
from modeling.storage.paths import as_path

META_WEIGHTS = "consolidated.00.pth"
META_SIDE_FILES = ("params.json", "tokenizer.model")


class FullModelMetaCheckpointer(Checkpointer):
    """Load a Meta checkpoint (one or more ``consolidated.NN.pth``) into our keys; save one.

    Args:
        checkpoint_dir: The directory with ``consolidated.NN.pth`` and ``params.json``
            (the download's ``original/`` folder).
        checkpoint_files: File names in rank order, or torchtune's ``filename_format`` /
            ``max_filename`` mapping; all ``consolidated.*.pth`` when omitted.
        model_type: ``llama3`` (also Llama 3.1 and 3.3), ``llama3_2``, ``llama2`` or
            ``mistral`` (case-insensitive).
        output_dir: Where :meth:`save_checkpoint` writes.
        **torchtune_kwargs: torchtune's ``recipe_checkpoint`` etc., accepted and ignored.

    Raises:
        FileNotFoundError: For a missing directory, params.json or weight file.
        ValueError: For a model_type without a Meta format, or an unknown keyword.
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
        self.mapper = MetaKeyMapper(model_type)
        self.model_type = self.mapper.model_type
        self.checkpoint_dir = checkpoint_directory(checkpoint_dir)
        self.params_path = required_file(self.checkpoint_dir, "params.json")
        self.files = resolve_meta_files(self.checkpoint_dir, checkpoint_files)
        self.output_dir = None if output_dir is None else as_path(output_dir)
        self._mapped: list[dict[str, torch.Tensor]] | None = None
        self._file_bytes = 0  # the largest file's tensor bytes: the budget of mapped pages
        self._bytes_read = 0  # bytes read through the current mappings
        self._params: dict | None = None

    def load_checkpoint(self) -> dict[str, torch.Tensor]:
        """Our state dict (model-parallel slices concatenated).

        Raises:
            ValueError: Naming an unknown key, a corrupt file, or a key missing from a rank.
        """
        return dict(self.iter_checkpoint())

    def iter_checkpoint(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield our ``(key, tensor)`` pairs one at a time.

        For a tied model type (``llama3_2``) the file's ``output.weight``, a copy of the
        embedding, is not yielded: the model has none (torchtune drops it too).

        Raises:
            ValueError: When a tied model type's ``output.weight`` is not the embedding's
                shape.
        """
        keys = self.keys()
        if self.model_type in TIED_OUTPUT_MODEL_TYPES:
            why = f"model_type {self.model_type!r} ties its output to the embedding"
            keys = without_tied_copy(keys, self.shape, why=why, checkpoint_dir=self.checkpoint_dir)
        for key in keys:
            yield key, self.read_rows(key)

    def keys(self) -> list[str]:
        """Our keys of every tensor in the checkpoint (from the first file's names)."""
        keys = []
        for meta_key in self._files()[0]:
            if not IGNORED_META_KEYS.fullmatch(meta_key):
                rule, layer = self.mapper.meta_rule(meta_key)
                keys.append(rule.ours.format(layer))
        return keys

    def shape(self, key: str) -> tuple[int, ...]:
        """Our tensor ``key``'s shape: its slices' shapes joined along the split dim."""
        meta_key, rule = self.mapper.meta_key(key)
        shapes = [tuple(self._piece(t, path, meta_key).shape) for t, path in self._parts()]
        if rule.split_dim is None or len(shapes) == 1:
            return shapes[0]
        joined = list(shapes[0])
        joined[rule.split_dim] = sum(shape[rule.split_dim] for shape in shapes)
        return tuple(joined)

    def read_rows(self, key: str, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``[start, stop)`` of our tensor ``key``, from the files that hold them.

        Tensors split along dim 0 read only the files (and pages) their rows are in;
        tensors split along dim 1 read those rows of every file. Only the result is
        allocated: the slices are views of the mapped files until they are copied into it.

        Raises:
            ValueError: When the files' slices do not fit together along the model type's
                split dim (e.g. a Llama 3 checkpoint read as ``llama2``).
        """
        meta_key, rule = self.mapper.meta_key(key)
        pieces = [self._piece(tensors, path, meta_key) for tensors, path in self._parts()]
        if rule.split_dim is None or len(pieces) == 1:
            rows = pieces[0][start:stop].clone()
        else:
            self._check_layout(meta_key, rule.split_dim, pieces)
            rows = _concatenate(pieces, rule.split_dim, start, stop)
        del pieces
        self._count_read(rows.numel() * rows.element_size())
        return rows

    def check_model(self, model: nn.Module) -> None:
        """Compare ``params.json``'s sizes and RoPE scaling with the model's.

        ``use_scaled_rope: true`` is Llama 3.1-style scaling, by ``rope_scaling_factor``
        or, when params.json states none, the model type's factor
        (:data:`~modeling.convert.meta.SCALED_ROPE_FACTORS`). See ``validate_config``.
        """
        params = self._read_params()
        vocab = params.get("vocab_size")
        as_hf = {
            "hidden_size": params.get("dim"),
            "num_hidden_layers": params.get("n_layers"),
            "num_attention_heads": params.get("n_heads"),
            "num_key_value_heads": params.get("n_kv_heads") or params.get("n_heads"),
            "vocab_size": vocab if vocab and vocab > 0 else None,  # Llama 2 writes -1
        }
        if params.get("use_scaled_rope"):
            factor = params.get("rope_scaling_factor") or SCALED_ROPE_FACTORS.get(self.model_type)
            as_hf["rope_scaling"] = {"rope_type": "llama3", "factor": factor}
        validate_config(as_hf, model, config_path=self.params_path)

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

        ``merged/`` is Meta's one-file format, written by rank 0 tensor by tensor;
        ``max_shard_size`` does not apply. A full fine-tune gathers one tensor at a time
        (every rank joins; the others drop it at once). A LoRA run gathers only its
        adapters: rank 0 writes them as a PEFT adapter (Hugging Face names) and merges
        them into the base read from this checkpoint, one tensor at a time, as the
        Hugging Face merge does (so a QLoRA run merges into the unquantised base). A tied
        ``llama3_2`` model's output gets its ``output.weight`` back, from the embedding.
        """
        output_dir = as_path(output_dir)
        if lora_config is None:
            state = model.state_dict()
            if rank != 0:
                for tensor in state.values():
                    join_gather(tensor)
                return {}
            gathered = ((key, gather_full(tensor)) for key, tensor in state.items())
            merged = self._write_merged(output_dir, gathered, extra_files, self._tied(state))
            return {MERGED_DIR: merged}
        adapters = {k: gather_full(v) for k, v in get_adapter_params(model).items()}
        if rank != 0:
            return {}
        attn = model.layers[0].attn
        mapper = KeyMapper(
            self.model_type, HeadDims(attn.num_heads, attn.num_kv_heads, attn.head_dim)
        )
        adapter = save_adapter(
            output_dir, adapters, lora_config, mapper, self.checkpoint_dir, extra_files
        )
        merged = self._write_merged(
            output_dir, self._merged(model, adapters), extra_files, self._tied(self.keys())
        )
        return {ADAPTER_DIR: adapter, MERGED_DIR: merged}

    def _merged(
        self, model: nn.Module, adapters: dict[str, torch.Tensor]
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """The base's tensors, each with its adapter merged in, read one at a time.

        The files are unmapped after every tensor, so the pages read stay one tensor's
        worth even for a single-file base.
        """
        layers = {
            f"{name}.weight": (name, module)
            for name, module in model.named_modules()
            if isinstance(module, LoRALinear)
        }
        for key in self.keys():
            tensor = self.read_rows(key)
            self._mapped = None
            if key in layers:
                tensor = merge_weight(*layers[key], tensor, adapters)
            yield key, tensor
            del tensor  # not held while the next one is read

    def save_checkpoint(self, state_dict: dict[str, torch.Tensor]) -> dict[str, Path]:
        """Write ``output_dir/merged/consolidated.00.pth`` with params.json (and tokenizer.model).

        Written atomically, as one unsplit file in Meta's key names. A tied ``llama3_2``
        state dict (no ``output.weight``) gets one, a copy of ``tok_embeddings.weight``,
        as Meta's files have and torchtune writes.

        Returns:
            ``{"merged": path}``.
        """
        output_dir = require_output_dir(self.output_dir)
        merged = self._write_merged(output_dir, state_dict.items(), None, self._tied(state_dict))
        return {MERGED_DIR: merged}

    def _tied(self, keys: Iterable[str]) -> bool:
        """Whether a tied model type's tensors ``keys`` lack the output Meta's files hold."""
        return self.model_type in TIED_OUTPUT_MODEL_TYPES and OUTPUT_KEY not in set(keys)

    def _write_merged(
        self,
        output_dir: Path,
        tensors: Iterable[tuple[str, torch.Tensor]],
        extra_files: Mapping[str, bytes] | None = None,
        copy_embedding: bool = False,
    ) -> Path:
        """Write ``output_dir/merged`` atomically, each of our tensors as it arrives.

        ``extra_files`` (the run's tokenizer files) go in with it, so ``transformers``
        loads the tokenizer of a Meta-format output as well. With ``copy_embedding`` the
        embedding is written a second time, as ``output.weight`` (a tied model's output).
        """
        with atomic_directory(output_dir / MERGED_DIR) as tmp:
            with TorchArchiveWriter(tmp / META_WEIGHTS) as archive:
                for key, tensor in tensors:
                    archive.add(*self.mapper.to_meta(key, tensor))
                    if copy_embedding and key == EMBEDDING_KEY:
                        archive.add(*self.mapper.to_meta(OUTPUT_KEY, tensor))
                    del tensor  # not held while the next one is gathered
            copy_files(self.checkpoint_dir, tmp, META_SIDE_FILES)
            write_files(tmp, extra_files)
        return output_dir / MERGED_DIR

    def _files(self) -> list[dict[str, torch.Tensor]]:
        """Each file's tensors, memory-mapped on first use (again after :meth:`_count_read`)."""
        if self._mapped is None:
            self._mapped = [load_torch_file(path) for path in self.files]
            self._file_bytes = max(
                sum(t.numel() * t.element_size() for t in tensors.values())
                for tensors in self._mapped
            )
            self._bytes_read = 0
        return self._mapped

    def _count_read(self, nbytes: int) -> None:
        """Drop the mappings once a file's worth was read through them.

        Pages read through a mapping stay in this process's resident memory until it
        is unmapped, so reading a whole model through them would hold it twice.
        """
        self._bytes_read += nbytes
        if self._bytes_read >= self._file_bytes:
            self._mapped = None

    def _read_params(self) -> dict:
        if self._params is None:
            self._params = read_json(self.params_path)
        return self._params

    def _check_layout(self, meta_key: str, split_dim: int, pieces: list[torch.Tensor]) -> None:
        """Raise unless the files' slices of ``meta_key`` fit together along ``split_dim``."""
        shapes = [tuple(piece.shape) for piece in pieces]
        kept = {shape[:split_dim] + shape[split_dim + 1 :] for shape in shapes}
        if len(kept) > 1:
            raise ValueError(
                f"{meta_key!r} has slices of shapes {shapes} in {[p.name for p in self.files]}; "
                f"model-parallel slices must agree on every dim but {split_dim}: the files "
                f"are from different checkpoints"
            )
        width = self._read_params().get("dim")
        if meta_key != META_EMBEDDING_KEY or not width:
            return
        found = {0: shapes[0][1] == width, 1: sum(shape[1] for shape in shapes) == width}
        if found[split_dim]:
            return
        layouts = {
            0: "over the vocabulary (Llama 3)",
            1: "over the embedding dim (Llama 2, Mistral)",
        }
        other = 1 - split_dim
        fix = (
            f"set model_type to one of {[t for t, d in EMBEDDING_SPLIT_DIMS.items() if d == other]}"
            if found[other]
            else "check that params.json belongs to these files"
        )
        raise ValueError(
            f"{meta_key!r} is split into {len(shapes)} slices of shape {shapes[0]} across "
            f"{self.files[0].name}..{self.files[-1].name}, which for params.json's dim "
            f"{width} does not fit model_type {self.model_type!r}'s split "
            f"{layouts[split_dim]}; {fix}"
        )

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


def _concatenate(
    pieces: list[torch.Tensor], split_dim: int, start: int, stop: int | None
) -> torch.Tensor:
    """Rows ``[start, stop)`` of the model-parallel ``pieces`` joined along ``split_dim``."""
    if split_dim == 1:
        return torch.cat([piece[start:stop] for piece in pieces], dim=1)
    stop = sum(len(piece) for piece in pieces) if stop is None else stop
    rows, offset = [], 0
    for piece in pieces:
        lo, hi = max(start - offset, 0), min(stop - offset, len(piece))
        if lo < hi:
            rows.append(piece[lo:hi])
        offset += len(piece)
    return torch.cat(rows) if rows else pieces[0][:0].clone()
