"""Read and write Meta ``consolidated.NN.pth`` checkpoints (torchtune's Meta checkpointer).

Multi-file checkpoints hold one model-parallel rank each; their slices are concatenated
along the split dim the Meta key map records (replicated norms are taken from rank 0).
"""

from collections.abc import Iterator
from pathlib import Path

import torch

from modeling.checkpointing.atomic import atomic_directory
from modeling.checkpointing.files import checkpoint_directory, required_file, resolve_meta_files
from modeling.checkpointing.hf_checkpointer import MERGED_SUBDIR, _output_dir
from modeling.checkpointing.options import check_torchtune_kwargs
from modeling.checkpointing.readers import load_torch_file
from modeling.checkpointing.writers import copy_files
from modeling.convert import MetaKeyMapper
from modeling.convert.meta import IGNORED_META_KEYS

META_WEIGHTS = "consolidated.00.pth"
META_SIDE_FILES = ("params.json", "tokenizer.model")


class FullModelMetaCheckpointer:
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
        self.output_dir = None if output_dir is None else Path(output_dir)

    def load_checkpoint(self) -> dict[str, torch.Tensor]:
        """Our state dict (model-parallel slices concatenated).

        Raises:
            ValueError: Naming an unknown key, a corrupt file, or a key missing from a rank.
        """
        return dict(self.iter_checkpoint())

    def iter_checkpoint(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield our ``(key, tensor)`` pairs one at a time."""
        ranks = [load_torch_file(path) for path in self.files]
        for meta_key in list(ranks[0]):
            if IGNORED_META_KEYS.fullmatch(meta_key):
                continue
            rule, _ = self.mapper.meta_rule(meta_key)
            pieces = [
                self._piece(rank, path, meta_key)
                for rank, path in zip(ranks, self.files, strict=True)
            ]
            if rule.split_dim is None or len(pieces) == 1:
                tensor = pieces[0]
            else:
                tensor = torch.cat(pieces, dim=rule.split_dim)
            yield from self.mapper.from_meta(meta_key, tensor)
            del pieces

    def save_checkpoint(self, state_dict: dict[str, torch.Tensor]) -> dict[str, Path]:
        """Write ``output_dir/merged/consolidated.00.pth`` with params.json (and tokenizer.model).

        Written atomically, as one unsplit file in Meta's key names.

        Returns:
            ``{"merged": path}``.
        """
        output_dir = _output_dir(self.output_dir)
        meta = dict(self.mapper.to_meta(key, tensor) for key, tensor in state_dict.items())
        with atomic_directory(output_dir / MERGED_SUBDIR) as tmp:
            torch.save(meta, tmp / META_WEIGHTS)
            copy_files(self.checkpoint_dir, tmp, META_SIDE_FILES)
        return {MERGED_SUBDIR: output_dir / MERGED_SUBDIR}

    @staticmethod
    def _piece(rank: dict[str, torch.Tensor], path: Path, meta_key: str) -> torch.Tensor:
        if meta_key not in rank:
            raise ValueError(
                f"{path.name} lacks {meta_key!r} that consolidated.00.pth has; the files are "
                f"from different checkpoints or one is incomplete"
            )
        return rank.pop(meta_key)
